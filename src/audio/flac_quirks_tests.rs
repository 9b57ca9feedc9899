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

/// The defects a header was read through, joined.
fn defects(data: &[u8]) -> String {
    header(data).unwrap().unwrap().defects.join("; ")
}

#[test]
fn corrupt_metadata_is_named() {
    let cut = header(&flac_header(1152, 1152)[..30]).err().unwrap();
    assert!(cut.to_string().contains("STREAMINFO block"), "{cut}");
    let mut comment = 3u32.to_le_bytes().to_vec();
    comment.extend(b"ven");
    comment.extend(u32::MAX.to_le_bytes()); // four billion comments in a 11-byte block
    // libFLAC plays these: the block is named as a defect, not refused.
    let lying = defects(&with_block(4, &comment));
    assert!(lying.contains("VORBIS_COMMENT"), "{lying}");
    let mut picture = vec![0, 0, 0, 3, 0, 0, 0, 9];
    picture.extend(b"image/png");
    picture.extend([0; 4 + 16]);
    picture.extend(1000u32.to_be_bytes()); // 1000 bytes of data, none there
    let lying = defects(&with_block(6, &picture));
    assert!(lying.contains("PICTURE"), "{lying}");
    picture.truncate(picture.len() - 4);
    picture.extend(2u32.to_be_bytes());
    picture.extend([1, 2]);
    assert_eq!(defects(&with_block(6, &picture)), "");
    comment.truncate(7);
    comment.extend(1u32.to_le_bytes());
    comment.extend(3u32.to_le_bytes());
    comment.extend(b"A=b");
    assert_eq!(defects(&with_block(4, &comment)), "");
}

#[test]
fn streaminfo_out_of_order_or_missing_is_a_defect() {
    // PADDING first, then STREAMINFO as the last block.
    let mut data = b"fLaC\x01\x00\x00\x02\x00\x00".to_vec();
    let mut si = flac_header(1152, 1152)[4..].to_vec();
    si[0] = 0x80;
    data.extend(&si);
    data.extend(FRAME);
    data.extend([0; 20]);
    let h = header(&data).unwrap().unwrap();
    assert_eq!((h.rate, h.channels, h.total_frames), (44_100, 2, 1234));
    assert!(h.defects[0].contains("out of order"), "{:?}", h.defects);

    // Only PADDING: the frame gives the format.
    let mut bare = b"fLaC\x81\x00\x00\x02\x00\x00".to_vec();
    bare.extend(FRAME);
    bare.extend([0; 20]);
    let h = header(&bare).unwrap().unwrap();
    assert_eq!((h.rate, h.channels, h.bits), (44_100, 2, 16));
    assert!(h.defects[0].contains("no STREAMINFO"), "{:?}", h.defects);

    // No "fLaC" at all: a stream that starts at a frame header.
    let frames = &bare[10..];
    let h = header(frames).unwrap().unwrap();
    assert_eq!((h.audio_start, h.rate), (0, 44_100));
    assert!(h.defects[0].contains("no FLAC header"), "{:?}", h.defects);
}

#[test]
fn rebuilt_header_takes_the_block_size_from_the_frame() {
    let mut data = flac_header(4096, 4096);
    data.extend(FRAME);
    data.extend([0x11; 20]);
    let mut h = header(&data).unwrap().unwrap();
    let frame = h.first_frame(&mut file_with(&data)).unwrap().unwrap();
    let rebuilt = h.rebuilt(&frame).unwrap();
    // No lie about blocks here: 1152 <= 4096.
    assert!(h.defects.is_empty(), "{:?}", h.defects);
    assert_eq!(&rebuilt[..4], b"fLaC");
    assert_eq!(&rebuilt[8..12], &[0x04, 0x80, 0x04, 0x80]); // 1152 twice
    assert_eq!(&rebuilt[12..18], &[0; 6]); // frame sizes unknown
    assert_eq!(
        rebuilt[..],
        flac_header(1152, 1152)[..42]
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                // The total (low 36 bits of bytes 21..26) is left unknown.
                if (22..26).contains(&i) {
                    0
                } else if i == 21 {
                    b & 0xf0
                } else if (12..18).contains(&i) {
                    0
                } else {
                    b
                }
            })
            .collect::<Vec<_>>()[..]
    );

    let mut small = flac_header(576, 576);
    small.extend(FRAME);
    small.extend([0x11; 20]);
    let mut h = header(&small).unwrap().unwrap();
    let frame = h.first_frame(&mut file_with(&small)).unwrap().unwrap();
    h.rebuilt(&frame).unwrap();
    assert!(h.defects[0].contains("at most 576"), "{:?}", h.defects);

    // A frame that contradicts the rate is not papered over.
    let mut lying = flac_header(1152, 1152);
    lying[18..21].copy_from_slice(&[0x0b, 0xb8, 0x02]);
    lying.extend(FRAME);
    let mut h = header(&lying).unwrap().unwrap();
    let frame = h.first_frame(&mut file_with(&lying)).unwrap().unwrap();
    assert!(h.rebuilt(&frame).is_none());
}

#[test]
fn rebuilt_source_is_header_then_audio() {
    let mut data = b"junk-metadata".to_vec();
    data.extend(b"AUDIO");
    let mut r = Rebuilt::new(file_with(&data), b"HEAD".to_vec(), 13, data.len() as u64);
    let mut seen = Vec::new();
    r.read_to_end(&mut seen).unwrap();
    assert_eq!(seen, b"HEADAUDIO");
    assert_eq!(r.byte_len(), Some(9));
    assert_eq!(r.seek(SeekFrom::End(-3)).unwrap(), 6);
    let mut tail = Vec::new();
    r.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, b"DIO");
    r.seek(SeekFrom::Start(2)).unwrap();
    let mut mid = [0; 4];
    r.read_exact(&mut mid).unwrap();
    assert_eq!(&mid, b"ADAU");
}

#[test]
fn total_is_hidden_but_bit_depth_kept() {
    let data = flac_header(1152, 1152);
    let h = header(&data).unwrap().unwrap();
    let mut view = View::new(file_with(&data), data.len() as u64)
        .unwrap()
        .without_total(&h);
    let mut seen = Vec::new();
    view.read_to_end(&mut seen).unwrap();
    let mut expected = data.clone();
    expected[21] &= 0xf0;
    expected[22..26].fill(0);
    assert_eq!(seen, expected);
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

#[test]
fn channel_mask_comes_from_its_tag() {
    let comment = |entries: &[&str]| {
        let mut body = 3u32.to_le_bytes().to_vec();
        body.extend(b"ven");
        body.extend((entries.len() as u32).to_le_bytes());
        for e in entries {
            body.extend((e.len() as u32).to_le_bytes());
            body.extend(e.as_bytes());
        }
        body
    };
    let mask = |entries: &[&str]| {
        header(&with_block(4, &comment(entries)))
            .unwrap()
            .unwrap()
            .channel_mask
    };
    assert_eq!(
        mask(&["ARTIST=x", "WAVEFORMATEXTENSIBLE_CHANNEL_MASK=0x0107"]),
        Some(0x107)
    );
    assert_eq!(mask(&["waveformatextensible_channel_mask=311"]), Some(311));
    assert_eq!(mask(&["WAVEFORMATEXTENSIBLE_CHANNEL_MASK=lots"]), None);
    assert_eq!(mask(&["TITLE=y"]), None);
}
