use super::*;
use std::io::Write;

/// "fLaC" + a last STREAMINFO block: min/max block, 44100 Hz, 2 channels, 16 bit, 1234 frames.
fn flac_header(min: u16, max: u16) -> Vec<u8> {
    let mut data = b"fLaC\x80\x00\x00\x22".to_vec();
    data.extend(min.to_be_bytes());
    data.extend(max.to_be_bytes());
    data.extend([0; 6]); // frame sizes
    // 20 bits rate, 3 bits channels-1, 5 bits bps-1, 36 bits total.
    let packed: u64 = (44_100 << 44) | (1 << 41) | (15 << 36) | 1234;
    data.extend(packed.to_be_bytes());
    data.extend([0; 16]); // MD5
    data
}

/// A real frame header from the reference encoder: 1152 samples, 44.1 kHz, mid-side stereo,
/// 16 bit, frame 0, then its CRC-8.
const FRAME: [u8; 6] = [0xff, 0xf8, 0x39, 0xa8, 0x00, 0xe1];

/// `flac_header` with one more block before the audio.
fn with_block(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut data = flac_header(1152, 1152);
    data[4] = 0; // STREAMINFO is no longer last
    data.push(0x80 | kind);
    data.extend(&(body.len() as u32).to_be_bytes()[1..]);
    data.extend(body);
    data
}

fn file_with(data: &[u8]) -> File {
    let mut tmp = tempfile::tempfile().unwrap();
    tmp.write_all(data).unwrap();
    tmp
}

fn header(data: &[u8]) -> anyhow::Result<Option<FlacHeader>> {
    FlacHeader::read(&mut file_with(data), data.len() as u64)
}

#[test]
fn reads_streaminfo() {
    let mut data = flac_header(576, 4608);
    data.extend([0xff, 0xf8]); // start of a first frame
    let h = header(&data).unwrap().unwrap();
    assert_eq!((h.min_block, h.max_block), (576, 4608));
    assert_eq!(
        (h.rate, h.channels, h.bits, h.total_frames),
        (44_100, 2, 16, 1234)
    );
    assert_eq!(h.audio_start, 42);
    assert!(header(b"RIFF....WAVE").unwrap().is_none());
}

#[test]
fn corrupt_metadata_is_named() {
    let cut = header(&flac_header(1152, 1152)[..30]).err().unwrap();
    assert!(cut.to_string().contains("STREAMINFO block"), "{cut}");
    let mut comment = 3u32.to_le_bytes().to_vec();
    comment.extend(b"ven");
    comment.extend(u32::MAX.to_le_bytes()); // four billion comments in a 11-byte block
    let lying = header(&with_block(4, &comment)).err().unwrap();
    assert!(lying.to_string().contains("VORBIS_COMMENT"), "{lying}");
    let mut picture = vec![0, 0, 0, 3, 0, 0, 0, 9];
    picture.extend(b"image/png");
    picture.extend([0; 4 + 16]);
    picture.extend(1000u32.to_be_bytes()); // 1000 bytes of data, none there
    let lying = header(&with_block(6, &picture)).err().unwrap();
    assert!(lying.to_string().contains("PICTURE"), "{lying}");
    picture.truncate(picture.len() - 4);
    picture.extend(2u32.to_be_bytes());
    picture.extend([1, 2]);
    assert!(header(&with_block(6, &picture)).unwrap().is_some());
    comment.truncate(7);
    comment.extend(1u32.to_le_bytes());
    comment.extend(3u32.to_le_bytes());
    comment.extend(b"A=b");
    assert!(header(&with_block(4, &comment)).unwrap().is_some());
}

#[test]
fn first_frame_is_checked_against_streaminfo() {
    let mut data = flac_header(1152, 1152);
    data.extend(FRAME);
    data.extend([0; 20]);
    let h = header(&data).unwrap().unwrap();
    let mut file = file_with(&data);
    assert_eq!(h.explain(&mut file, data.len() as u64).unwrap(), None);

    let mut lying = data.clone();
    // STREAMINFO: 48 kHz (0xbb80 in 20 bits), 1 channel (0 in 3 bits), 16 bit as before.
    lying[18..21].copy_from_slice(&[0x0b, 0xb8, 0x00]);
    let h = header(&lying).unwrap().unwrap();
    let why = h.explain(&mut file_with(&lying), lying.len() as u64);
    let why = why.unwrap().unwrap();
    assert!(
        why.contains("48000 Hz") && why.contains("44100 Hz") && why.contains("1 channels"),
        "{why}"
    );

    let mut garbage = flac_header(1152, 1152);
    garbage.extend([0x55; 40]);
    let h = header(&garbage).unwrap().unwrap();
    let why = h.explain(&mut file_with(&garbage), garbage.len() as u64);
    assert!(why.unwrap().unwrap().contains("no valid audio frame"));
    let cut = &data[..44];
    let why = h.explain(&mut file_with(cut), cut.len() as u64);
    assert!(why.unwrap().unwrap().contains("truncated"));
}

#[test]
fn frame_headers_need_their_crc() {
    assert_eq!(Frame::parse(&FRAME).map(|f| f.block), Some(1152));
    let mut bad = FRAME;
    bad[5] ^= 1;
    assert!(Frame::parse(&bad).is_none());
    assert!(Frame::parse(&FRAME[..5]).is_none());
}

#[test]
fn id3v1_trailer_is_hidden_from_flac_only() {
    let mut data = flac_header(1152, 1152);
    data.extend([0xaa; 200]);
    let plain = data.len() as u64;
    data.extend(b"TAG");
    data.extend([0; 125]);
    let mut file = file_with(&data);
    assert_eq!(stream_len(&mut file, data.len() as u64).unwrap(), plain);
    let mut not_flac = data.clone();
    not_flac[0] = b'x';
    let len = not_flac.len() as u64;
    assert_eq!(stream_len(&mut file_with(&not_flac), len).unwrap(), len);

    let mut view = View::new(file, plain).unwrap();
    let mut seen = Vec::new();
    view.read_to_end(&mut seen).unwrap();
    assert_eq!(seen, data[..data.len() - 128]);
    assert_eq!(view.seek(SeekFrom::End(-2)).unwrap(), plain - 2);
    assert_eq!(view.byte_len(), Some(plain));
}

#[test]
fn patches_only_the_min_block_size() {
    let mut data = flac_header(576, 4608);
    data.extend([0xaa; 30]);
    let h = header(&data).unwrap().unwrap();
    let mut patched = View::new(file_with(&data), data.len() as u64)
        .unwrap()
        .patched(&h);
    // Read in odd pieces so the patch straddles a read boundary.
    let mut seen = Vec::new();
    let mut piece = [0u8; 9];
    loop {
        let n = patched.read(&mut piece).unwrap();
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&piece[..n]);
    }
    let mut expected = data.clone();
    expected[8..10].copy_from_slice(&4608u16.to_be_bytes());
    assert_eq!(seen, expected);
}
