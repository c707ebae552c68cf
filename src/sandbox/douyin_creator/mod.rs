//! The simulator of the `douyin` (creator center) protocol, /work/shared/protocols/douyin-creator.md.
mod b64;
mod qr;
mod sigv4;
pub(crate) mod state;
