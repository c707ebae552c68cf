//! The login QR code: `dropcast-sandbox-login:<token>` as a real QR code in a PNG (the
//! `qrcode` crate lays out the modules, the `image` crate writes the PNG).

use std::io::Cursor;

use image::{GrayImage, ImageFormat, Luma};
use qrcode::{Color, QrCode};

/// What the QR code of a login token says.
pub(crate) fn text_of(token: &str) -> String {
    format!("dropcast-sandbox-login:{token}")
}

/// Pixels per module, and modules of quiet zone around the code.
const SCALE: u32 = 6;
const QUIET: u32 = 4;

/// A PNG of the QR code for `text`; `None` only if the text cannot fit in a QR code.
pub(crate) fn png(text: &str) -> Option<Vec<u8>> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    let width = u32::try_from(code.width()).ok()?;
    let colors = code.to_colors();
    let side = (width + 2 * QUIET) * SCALE;
    let img = GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (x / SCALE, y / SCALE);
        let inside = (QUIET..QUIET + width).contains(&mx) && (QUIET..QUIET + width).contains(&my);
        let dark = inside && colors[((my - QUIET) * width + (mx - QUIET)) as usize] == Color::Dark;
        Luma([if dark { 0 } else { 255 }])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).ok()?;
    Some(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_decodes_back_to_its_text() {
        let text = text_of("0123abcd");
        let bytes = png(&text).expect("png");
        let img = image::load_from_memory(&bytes).expect("a png").to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(img);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().expect("decodes");
        assert_eq!(content, text);
    }
}
