fn main() -> std::process::ExitCode {
    dropcast::cli::main()
}
