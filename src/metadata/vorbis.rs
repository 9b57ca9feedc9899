//! A lenient reader for a FLAC file's VORBIS_COMMENT block. lofty drops a comment whose value is
//! not UTF-8; old taggers wrote Latin-1 ("Bj\xf6rk"), and losing a title over it is worse than
//! showing it decoded as Latin-1. Reads only; pictures and everything else stay lofty's job.

use std::io::{Read, Seek, SeekFrom};

const VORBIS_COMMENT: u8 = 4;

/// Every comment as (key, value), values decoded as UTF-8 or else Latin-1; `None` if the stream
/// is not a well-formed FLAC header or has no comment block (the caller then falls back to lofty).
pub(super) fn flac_comments(r: &mut (impl Read + Seek)) -> Option<Vec<(String, String)>> {
    skip_id3v2(r)?;
    let mut magic = [0; 4];
    r.read_exact(&mut magic).ok()?;
    if &magic != b"fLaC" {
        return None;
    }
    loop {
        let mut header = [0; 4];
        r.read_exact(&mut header).ok()?;
        let len = u32::from_be_bytes([0, header[1], header[2], header[3]]);
        if header[0] & 0x7F == VORBIS_COMMENT {
            let mut block = Vec::new();
            r.take(u64::from(len)).read_to_end(&mut block).ok()?;
            return parse_block(&block);
        }
        if header[0] & 0x80 != 0 {
            return None;
        }
        r.seek(SeekFrom::Current(i64::from(len))).ok()?;
    }
}

/// Skip an ID3v2 tag some tools put in front of "fLaC" (10-byte header, syncsafe size).
fn skip_id3v2(r: &mut (impl Read + Seek)) -> Option<()> {
    let mut h = [0; 10];
    r.read_exact(&mut h).ok()?;
    if &h[..3] != b"ID3" {
        r.seek(SeekFrom::Start(0)).ok()?;
        return Some(());
    }
    let size = h[6..10]
        .iter()
        .fold(0u64, |acc, b| (acc << 7) | u64::from(b & 0x7F));
    let footer = if h[5] & 0x10 != 0 { 10 } else { 0 };
    r.seek(SeekFrom::Start(10 + size + footer)).ok()?;
    Some(())
}

fn parse_block(mut b: &[u8]) -> Option<Vec<(String, String)>> {
    let vendor = take_u32(&mut b)? as usize;
    b = b.get(vendor..)?;
    let count = take_u32(&mut b)?;
    let mut out = Vec::new();
    for _ in 0..count {
        let len = take_u32(&mut b)? as usize;
        let comment = b.get(..len)?;
        b = &b[len..];
        // A comment without '=' is not a field; skip it rather than reject the block.
        let Some(eq) = comment.iter().position(|&c| c == b'=') else {
            continue;
        };
        out.push((decode(&comment[..eq]), decode(&comment[eq + 1..])));
    }
    Some(out)
}

fn take_u32(b: &mut &[u8]) -> Option<u32> {
    let (n, rest) = b.split_first_chunk::<4>()?;
    *b = rest;
    Some(u32::from_le_bytes(*n))
}

fn decode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn flac_with(comments: &[&[u8]], id3: bool) -> Vec<u8> {
        let mut block = Vec::new();
        block.extend(3u32.to_le_bytes());
        block.extend(b"ven");
        block.extend((comments.len() as u32).to_le_bytes());
        for c in comments {
            block.extend((c.len() as u32).to_le_bytes());
            block.extend(*c);
        }
        let mut f = Vec::new();
        if id3 {
            f.extend(b"ID3\x04\x00\x00\x00\x00\x01\x00"); // 128-byte tag body
            f.extend([0; 128]);
        }
        f.extend(b"fLaC");
        f.extend([0x00, 0, 0, 34]); // STREAMINFO, not last
        f.extend([0; 34]);
        f.push(0x80 | VORBIS_COMMENT);
        f.extend(&(block.len() as u32).to_be_bytes()[1..]);
        f.extend(block);
        f
    }

    #[test]
    fn reads_utf8_and_latin1() {
        let f = flac_with(
            &[b"TITLE=Bj\xf6rk", b"ARTIST=\xc3\x89 ok", b"junk", b"A=b=c"],
            true,
        );
        let got = flac_comments(&mut Cursor::new(f)).unwrap();
        let want = [("TITLE", "Björk"), ("ARTIST", "É ok"), ("A", "b=c")];
        let want: Vec<_> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn malformed_is_none_not_panic() {
        let f = flac_with(&[b"TITLE=x"], false);
        for cut in [0, 3, 10, 45, f.len() - 2] {
            assert_eq!(
                flac_comments(&mut Cursor::new(&f[..cut])),
                None,
                "cut at {cut}"
            );
        }
        let mut lying = f.clone();
        let n = lying.len();
        lying[n - 11] = 0xFF; // comment length far beyond the block
        assert_eq!(flac_comments(&mut Cursor::new(lying)), None);
        assert_eq!(flac_comments(&mut Cursor::new(b"OggS....".to_vec())), None);
    }
}
