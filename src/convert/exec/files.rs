//! Making one staged file: a conversion or a retag into a temporary file beside the target,
//! tagged from its source, journaled, then renamed into place. A source that changed meanwhile
//! is never recorded.

use std::fs;
use std::io;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use sha2::{Digest, Sha256};

use super::Ctx;
use crate::audio;
use crate::convert::plan::Wanted;
use crate::fsutil::{self, Stamp};
use crate::manifest::{Change, Record};
use crate::metadata;
use crate::scan::SourceKind;

impl Ctx<'_> {
    /// Make `output` from `source`; returns the seconds of audio encoded. A source that changes
    /// or goes away meanwhile fails and records nothing: the next run sees what it became.
    pub(super) fn convert(&self, source: &str, output: &str) -> anyhow::Result<f64> {
        let src = self.settings.library.join(source);
        self.convert_from(source, &src, output).map_err(|e| {
            if src.symlink_metadata().is_err() {
                anyhow!("the file disappeared while it was being converted")
            } else {
                e
            }
        })
    }

    fn convert_from(&self, source: &str, src: &Path, output: &str) -> anyhow::Result<f64> {
        let w = self.wanted(source)?;
        let target = self.settings.staging.join(output);
        fsutil::check_confined(&self.settings.staging, &target)?;
        let mut temp = fsutil::temp_beside(&target)?;
        let seconds = match w.kind {
            SourceKind::Cover => {
                let image = metadata::load_cover(src)?;
                let fitted = self.fit(&image, source);
                io::Write::write_all(temp.as_file_mut(), &fitted.data).context("writing")?;
                let record = Record {
                    source: w.rel.clone(),
                    kind: w.kind,
                    stamp: w.stamp,
                    audio_hash: w.audio_hash.clone(),
                    tag_hash: w.tag_hash.clone(),
                    encoder: w.encoder.clone(),
                    tag_key: w.tag_key.clone(),
                    output: output.to_string(),
                    output_stamp: Stamp::of(temp.path()).context("the temporary file vanished")?,
                    output_hash: fsutil::sha256_file(temp.path())?,
                    retag_from: None,
                    own_genre: Vec::new(),
                    genre: Vec::new(),
                };
                return self
                    .commit(w, src, source, output, record, temp, &target)
                    .map(|()| 0.0);
            }
            SourceKind::Lossless => {
                let t = audio::transcode(src, temp.as_file_mut(), self.resolved.mirror.quality)?;
                if t.audio_hash != w.audio_hash {
                    bail!("the file changed while it was being converted; run again");
                }
                if t.output_frames == 0 {
                    // LAME's empty file is one silent frame that ffmpeg (and so Navidrome) rejects.
                    bail!("the file holds no audio");
                }
                for why in &t.warnings {
                    tracing::warn!("{source}: {why}");
                }
                tracing::debug!(
                    "{source}: {} Hz × {} ch, {} frames → {} Hz × {} ch, {} frames",
                    t.source_rate,
                    t.source_channels,
                    t.source_frames,
                    t.output_rate,
                    t.output_channels,
                    t.output_frames
                );
                t.source_frames as f64 / f64::from(t.source_rate.max(1))
            }
            SourceKind::Mp3 => {
                let mut from = fs::File::open(src).context("opening")?;
                io::copy(&mut from, temp.as_file_mut()).context("copying")?;
                0.0
            }
        };
        let record = self.tag_into(w, output, temp.path())?;
        self.commit(w, src, source, output, record, temp, &target)?;
        Ok(seconds)
    }

    /// Journal `record` and rename `temp` into place, unless the source changed meanwhile or
    /// a file of the user's took the path.
    #[allow(
        clippy::too_many_arguments,
        reason = "one private step of `convert_from`"
    )]
    fn commit(
        &self,
        w: &Wanted,
        src: &Path,
        source: &str,
        output: &str,
        record: Record,
        temp: tempfile::NamedTempFile,
        target: &Path,
    ) -> anyhow::Result<()> {
        if Stamp::of(src) != Some(w.stamp) {
            bail!("the file changed while it was being converted; run again");
        }
        if target.exists() && !self.owns(source, output)? {
            bail!("staging already has {output}, which musync did not create; move it away");
        }
        let mut changes = vec![Change::Put(record)];
        // The file the source had under another name (its old cover name) stays musync's to
        // delete, should the planned removal have failed.
        if let Ok(old) = self.existing(source)
            && old.output != output
            && self.settings.staging.join(&old.output).exists()
        {
            changes.push(Change::Orphan(old.output));
        }
        self.record(changes)?;
        fsutil::commit(temp, target)
    }

    /// `image` within `--art-max-size`, resized once per distinct image for the whole run. An
    /// image that cannot be decoded travels as it is, with a warning naming the track.
    fn fit(&self, image: &metadata::Cover, rel: &str) -> metadata::Cover {
        let max = self.resolved.mirror.art_max_size;
        if max == 0 {
            return image.clone();
        }
        let key = Sha256::digest(&image.data).to_vec();
        // Held while resizing, so that workers sharing an album's cover wait for one resize.
        let Ok(mut fitted) = self.fitted.lock() else {
            return image.clone();
        };
        fitted
            .entry(key)
            .or_insert_with(|| {
                metadata::fit_cover(image, max).unwrap_or_else(|e| {
                    tracing::warn!("{rel}: cover kept at its size: {e:#}");
                    image.clone()
                })
            })
            .clone()
    }

    pub(super) fn retag(&self, source: &str, output: &str) -> anyhow::Result<()> {
        let w = self.wanted(source)?;
        let target = self.settings.staging.join(output);
        fsutil::check_confined(&self.settings.staging, &target)?;
        let mut temp = fsutil::temp_beside(&target)?;
        let mut staged = fs::File::open(&target).with_context(|| format!("opening {output}"))?;
        io::copy(&mut staged, temp.as_file_mut()).with_context(|| format!("copying {output}"))?;
        let mut record = self.tag_into(w, output, temp.path())?;
        let old = self.existing(source)?;
        (record.audio_hash, record.encoder) = (old.audio_hash, old.encoder);
        record.retag_from = Some(old.output_hash);
        self.record(vec![Change::Put(record)])?;
        fsutil::commit(temp, &target)
    }

    /// Tag the temporary MP3 from its source: its tags, the genre the rules give it, its own
    /// front cover or else the folder's (the album folder's for a disc folder); its other
    /// pictures keep their types. Returns the record of the finished file.
    fn tag_into(&self, w: &Wanted, output: &str, mp3: &Path) -> anyhow::Result<Record> {
        let src = self.settings.library.join(&w.rel);
        let tags = metadata::read_tags(&src)?;
        let own_genre = tags.get("genre").unwrap_or_default().to_vec();
        let genre = self.resolved.rules.genre(&w.rel, &own_genre);
        let mut staged = tags.clone();
        staged.set("genre", genre.clone());
        let cover = crate::convert::folder_cover(self.scan, &self.resolved.rules, &w.rel);
        if staged.cover.is_none()
            && let Some((path, _)) = cover
        {
            staged.cover = Some(metadata::load_cover(&self.settings.library.join(path))?);
        }
        if let Some(cover) = &mut staged.cover {
            *cover = self.fit(cover, &w.rel);
        }
        for picture in &mut staged.others {
            picture.image = self.fit(&picture.image, &w.rel);
        }
        let id3 = self.resolved.mirror.id3;
        metadata::write_mp3_tags(mp3, &staged, id3)?;
        let tag_hash = metadata::tag_hash(&tags);
        Ok(Record {
            source: w.rel.clone(),
            kind: w.kind,
            stamp: w.stamp,
            audio_hash: w.audio_hash.clone(),
            tag_key: crate::convert::tag_key(&tag_hash, &genre, cover, &self.resolved.mirror),
            tag_hash,
            encoder: w.encoder.clone(),
            output: output.to_string(),
            output_stamp: Stamp::of(mp3).context("the temporary file vanished")?,
            output_hash: fsutil::sha256_file(mp3)?,
            retag_from: None,
            own_genre,
            genre,
        })
    }
}
