//! Generated libraries that change between runs: short FLACs in four albums, a native MP3 and a
//! cover, edited, renamed and retagged at random.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::*;

/// A generated library: short FLACs (one at 96 kHz/24-bit) in four albums under two genre
/// folders, a native MP3 made by `lame`, and a folder cover. `made` numbers new tracks.
pub struct Library {
    made: usize,
}

const ALBUMS: [&str; 4] = [
    "Jazz/Blue Session",
    "Jazz/Night Trio",
    "Rock/Loud Days",
    "Rock/Quiet Nights",
];

impl Library {
    pub fn generate(env: &Env, rng: &mut Rng) -> Library {
        let mut lib = Library { made: 0 };
        for i in 0..11 {
            lib.add_flac(env, rng, ALBUMS[i % ALBUMS.len()]);
        }
        let hires = env.lib("Rock/Quiet Nights/90 - Hi-Res.flac");
        let wav = env.dir.path().join("hires.wav");
        run(Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg("sine=frequency=330:duration=3:sample_rate=96000")
            .args(["-ac", "2", "-c:a", "pcm_s24le"])
            .arg(&wav));
        run(Command::new("flac")
            .args(["-s", "-f", "--tag=TITLE=Hi-Res", "--tag=ALBUM=Quiet Nights"])
            .arg(&wav)
            .arg("-o")
            .arg(&hires));
        run(Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg("sine=frequency=550:duration=4")
            .args(["-ac", "2", "-c:a", "pcm_s16le"])
            .arg(&wav));
        run(Command::new("lame")
            .args(["--quiet", "-V4", "--tt", "Native", "--tl", "Loud Days"])
            .arg(&wav)
            .arg(env.lib("Rock/Loud Days/91 - Native.mp3")));
        fs::remove_file(&wav).unwrap();
        make_image(
            &env.lib("Jazz/Blue Session/cover.jpg"),
            "color=c=blue:s=32x32",
        );
        lib
    }

    fn add_flac(&mut self, env: &Env, rng: &mut Rng, album: &str) -> String {
        self.made += 1;
        let n = self.made;
        let rel = format!("{album}/{n:02} - Track {n}.flac");
        let seconds = 2.0 + rng.unit() * 6.0;
        let (title, album_tag) = (format!("TITLE=Track {n}"), format!("ALBUM={album}"));
        make_flac(
            &env.lib(&rel),
            (seconds * 100.0).round() / 100.0,
            &[&title, &album_tag, "ARTIST=The Testers"],
        );
        rel
    }

    /// One random edit a user might make between two syncs; returns what it did.
    pub fn edit(&mut self, env: &Env, rng: &mut Rng) -> String {
        let flacs: Vec<String> = files(&env.library)
            .into_iter()
            .filter(|f| f.ends_with(".flac"))
            .collect();
        let albums = album_dirs(&env.library);
        match rng.below(10) {
            0 | 1 if flacs.len() < 15 => {
                let album = rng.pick(&albums).clone();
                format!("add {}", self.add_flac(env, rng, &album))
            }
            2 if flacs.len() > 8 => {
                let gone = rng.pick(&flacs);
                fs::remove_file(env.lib(gone)).unwrap();
                format!("delete {gone}")
            }
            3 | 4 => {
                let album = rng.pick(&albums);
                let (genre, name) = album.split_once('/').unwrap();
                let base = name.split(" (").next().unwrap();
                let to = format!("{genre}/{base} ({})", rng.below(1000));
                fs::rename(env.lib(album), env.lib(&to)).unwrap();
                format!("rename {album} -> {to}")
            }
            5 => {
                let track = rng.pick(&flacs);
                let album = rng.pick(&albums);
                let to = format!("{album}/{}", track.rsplit('/').next().unwrap());
                if env.lib(&to).exists() {
                    return "nothing".into();
                }
                fs::rename(env.lib(track), env.lib(&to)).unwrap();
                format!("move {track} -> {to}")
            }
            // Renaming a genre folder changes every tag under it: uploads and remote deletions.
            6 => {
                let genre = *rng.pick(&["Jazz", "Rock"]);
                let current = fs::read_dir(&env.library)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .find(|n| n.starts_with(genre))
                    .unwrap();
                let to = if current == genre {
                    format!("{genre} Extra")
                } else {
                    genre.to_owned()
                };
                fs::rename(env.lib(&current), env.lib(&to)).unwrap();
                format!("rename genre {current} -> {to}")
            }
            7 => {
                let track = rng.pick(&flacs);
                run(Command::new("touch").arg(env.lib(track)));
                format!("touch {track}")
            }
            _ => {
                let track = rng.pick(&flacs);
                let comment = format!("COMMENT={:x}", rng.next() >> rng.below(60));
                run(Command::new("metaflac")
                    .arg("--remove-tag=COMMENT")
                    .arg(format!("--set-tag={comment}"))
                    .arg(env.lib(track)));
                format!("retag {track} {comment}")
            }
        }
    }

    /// Give every FLAC a new comment of the same length: every staged file gets new tags but
    /// keeps its size (ID3 padding), which a size-only comparison cannot tell apart.
    pub fn retag_all(&self, env: &Env, rng: &mut Rng) -> String {
        let comment = format!("COMMENT={:016x}", rng.next());
        for track in files(&env.library).iter().filter(|f| f.ends_with(".flac")) {
            run(Command::new("metaflac")
                .arg("--remove-tag=COMMENT")
                .arg(format!("--set-tag={comment}"))
                .arg(env.lib(track)));
        }
        format!("retag all {comment}")
    }
}

/// `Genre/Album` folders of the library.
fn album_dirs(library: &Path) -> Vec<String> {
    let mut albums: Vec<String> = walkdir::WalkDir::new(library)
        .min_depth(2)
        .max_depth(2)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_dir())
        .map(|e| {
            let rel = e.path().strip_prefix(library).unwrap();
            rel.to_str().unwrap().to_owned()
        })
        .collect();
    albums.sort();
    albums
}
