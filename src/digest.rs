//! A fingerprint as musync holds it: a sha256 as its 32 bytes (shown as 64 lowercase hex
//! digits), any other text (a cover's `image <hex>`, its `<mime> <w>x<h>`) as it is. A record
//! holds four of them and a library 100,000 records, so the bytes, not the 64-character text,
//! are what stays in memory. One text is one value: 64 lowercase hex digits always become the
//! bytes, so two digests are equal exactly when their texts are.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(Repr);

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Repr {
    Sha256([u8; 32]),
    Text(Box<str>),
}

impl Digest {
    pub fn sha256(bytes: [u8; 32]) -> Digest {
        Digest(Repr::Sha256(bytes))
    }

    /// The 32 bytes, when it is a sha256.
    pub fn as_sha256(&self) -> Option<&[u8; 32]> {
        match &self.0 {
            Repr::Sha256(bytes) => Some(bytes),
            Repr::Text(_) => None,
        }
    }
}

impl Default for Digest {
    fn default() -> Digest {
        Digest(Repr::Text(Box::default()))
    }
}

impl From<&str> for Digest {
    fn from(text: &str) -> Digest {
        match unhex(text) {
            Some(bytes) => Digest::sha256(bytes),
            None => Digest(Repr::Text(text.into())),
        }
    }
}

impl From<String> for Digest {
    fn from(text: String) -> Digest {
        match unhex(&text) {
            Some(bytes) => Digest::sha256(bytes),
            None => Digest(Repr::Text(text.into_boxed_str())),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Sha256(bytes) => {
                let mut text = [0; 64];
                for (pair, b) in text.chunks_exact_mut(2).zip(bytes) {
                    pair[0] = HEX[usize::from(b >> 4)];
                    pair[1] = HEX[usize::from(b & 15)];
                }
                f.write_str(std::str::from_utf8(&text).expect("hex digits are ASCII"))
            }
            Repr::Text(text) => f.write_str(text),
        }
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        match &self.0 {
            Repr::Sha256(bytes) => unhex(other).as_ref() == Some(bytes),
            Repr::Text(text) => **text == *other,
        }
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        String::deserialize(deserializer).map(Digest::from)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex digits of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(HEX[usize::from(b >> 4)]));
        text.push(char::from(HEX[usize::from(b & 15)]));
    }
    text
}

/// The 32 bytes a 64-character lowercase hex text stands for (the only spelling that gives
/// the same text back).
fn unhex(text: &str) -> Option<[u8; 32]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_comes_back_as_it_went_in() {
        let hash = "0123456789abcdef".repeat(4);
        for text in [
            hash.as_str(),
            &hash.to_uppercase(),
            &hash[1..],
            "image 00ff",
            "image/png 10x10",
            "",
            "é",
        ] {
            let d = Digest::from(text);
            assert_eq!(d.to_string(), text);
            assert_eq!(d, Digest::from(text.to_string()));
            assert_eq!(d, *text);
            assert_eq!(d.as_sha256().is_some(), text == hash);
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        }
    }

    #[test]
    fn digests_are_equal_exactly_when_their_texts_are() {
        let a = "ab".repeat(32);
        assert_eq!(Digest::from(a.as_str()), Digest::sha256([0xab; 32]));
        assert_ne!(Digest::from(a.as_str()), Digest::from(a.to_uppercase()));
        assert_ne!(Digest::sha256([0xab; 32]), *"AB".repeat(32).as_str());
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }

    #[test]
    fn a_sha256_is_held_in_its_bytes() {
        assert!(std::mem::size_of::<Digest>() <= 40);
        assert_eq!(
            std::mem::size_of::<Option<Digest>>(),
            std::mem::size_of::<Digest>()
        );
    }
}
