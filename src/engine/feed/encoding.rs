//! Character sets of feed files: UTF-8 with or without BOM, and UTF-16 (LE
//! or BE) with BOM, which is transcoded to UTF-8 on the fly. Anything else
//! shows up as invalid UTF-8, which the readers report as one clear error —
//! unless the admin names the file's encoding (`--encoding LABEL`,
//! `import.encoding`: an encoding_rs label such as `windows-1252`); it is
//! never guessed.

use super::FeedError;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// What the file starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf8Bom,
    Utf16Le,
    Utf16Be,
}

/// The advice every reader gives for a file that is not UTF-8.
pub const NOT_UTF8: &str = "the file is not UTF-8 (perhaps Latin-1 or Windows-1252); \
                            give its encoding with --encoding LABEL (or import.encoding), e.g. --encoding \
                            windows-1252, or save it as UTF-8 and import again";

/// The encoding an `encoding_rs` label names (`windows-1252`, `latin1`,
/// `iso-8859-15`, `utf-8`, …).
pub fn for_label(label: &str) -> Option<&'static encoding_rs::Encoding> {
    encoding_rs::Encoding::for_label(label.trim().as_bytes())
}

/// Opens a feed as a UTF-8 byte stream (BOM removed, UTF-16 transcoded).
pub fn open_utf8(path: &Path) -> Result<(Box<dyn BufRead + Send>, Encoding), FeedError> {
    open_decoded(path, None)
}

/// Opens a feed as a UTF-8 byte stream; with `declared`, the file is decoded
/// from that encoding (a BOM still wins: a UTF-8 or UTF-16 file with BOM is
/// read as such).
pub fn open_decoded(
    path: &Path,
    declared: Option<&'static encoding_rs::Encoding>,
) -> Result<(Box<dyn BufRead + Send>, Encoding), FeedError> {
    let io = |source| FeedError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]).map_err(io)? {
            0 => break,
            k => n += k,
        }
    }
    let encoding = if n >= 3 && head[..3] == [0xEF, 0xBB, 0xBF] {
        Encoding::Utf8Bom
    } else if n >= 2 && head[..2] == [0xFF, 0xFE] {
        if n >= 4 && head[2..4] == [0, 0] {
            return Err(FeedError::File {
                path: path.to_path_buf(),
                message: "the file is UTF-32 encoded; save it as UTF-8 or UTF-16 with BOM and import again".into(),
            });
        }
        Encoding::Utf16Le
    } else if n >= 2 && head[..2] == [0xFE, 0xFF] {
        Encoding::Utf16Be
    } else {
        Encoding::Utf8
    };
    let skip = match encoding {
        Encoding::Utf8 => 0,
        Encoding::Utf8Bom => 3,
        // The decoder sniffs and removes the BOM itself.
        Encoding::Utf16Le | Encoding::Utf16Be => 0,
    };
    if let Some(declared) = declared.filter(|d| *d != encoding_rs::UTF_8 && encoding == Encoding::Utf8) {
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let decoder = encoding_rs_io::DecodeReaderBytesBuilder::new()
            .encoding(Some(declared))
            .build(file);
        return Ok((Box::new(BufReader::with_capacity(256 * 1024, decoder)), Encoding::Utf8));
    }
    file.seek(SeekFrom::Start(skip)).map_err(io)?;
    let reader: Box<dyn BufRead + Send> = match encoding {
        Encoding::Utf8 | Encoding::Utf8Bom => Box::new(BufReader::with_capacity(256 * 1024, file)),
        Encoding::Utf16Le | Encoding::Utf16Be => {
            let decoder = encoding_rs_io::DecodeReaderBytesBuilder::new()
                .bom_sniffing(true)
                .strip_bom(true)
                .build(file);
            Box::new(BufReader::with_capacity(256 * 1024, decoder))
        }
    };
    Ok((reader, encoding))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> (String, Encoding) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, bytes).unwrap();
        let (mut r, e) = open_utf8(&p).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        (s, e)
    }

    #[test]
    fn boms_and_utf16() {
        assert_eq!(read(b"\xEF\xBB\xBFab"), ("ab".into(), Encoding::Utf8Bom));
        assert_eq!(read(b"ab"), ("ab".into(), Encoding::Utf8));
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("Jörg".encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        assert_eq!(read(&le), ("Jörg".into(), Encoding::Utf16Le));
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("Jörg".encode_utf16().flat_map(|u| u.to_be_bytes()))
            .collect();
        assert_eq!(read(&be), ("Jörg".into(), Encoding::Utf16Be));
    }

    #[test]
    fn a_declared_encoding_decodes_windows_1252() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"J\xf6rg \xe4\xfc\xdf \x80").unwrap();
        let (mut r, _) = open_decoded(&p, for_label("windows-1252")).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "Jörg äüß €");
        assert!(for_label("klingon").is_none());
    }
}
