//! The `dropcast` binary: everything is in the library; see `cli::main`.

fn main() -> std::process::ExitCode {
    dropcast::cli::main()
}
