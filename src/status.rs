//! The status command: what each stage would do now (convert, tag and, with a remote, push),
//! from the stages' own planners run as dry runs. It writes nothing: no manifest, journal, lock,
//! push state or rclone version cache.

use std::io::{self, Write};

use serde::Serialize;

use crate::convert::{self, Counts};
use crate::interrupt;
use crate::manifest;
use crate::push;
use crate::rclone::{self, Rclone, RcloneError};
use crate::report;
use crate::tag::TagSummary;

/// Plan lines printed per stage; `--json` has them all.
const SHOWN: usize = 10;

pub struct StatusSettings {
    /// Its `dry_run` is forced on.
    pub convert: convert::ConvertSettings,
    pub push: Option<push::PushSettings>,
}

/// What `status --json` prints: a key per stage.
#[derive(Debug, Serialize)]
pub struct Status {
    pub convert: Stage<convert::Summary>,
    pub tag: Stage<TagSummary>,
    /// `None` without `--remote`.
    pub push: Option<PushStatus>,
}

/// A stage's dry-run summary and every line of its plan.
#[derive(Debug, Serialize)]
pub struct Stage<T> {
    #[serde(flatten)]
    pub summary: T,
    pub plan: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PushStatus {
    pub remote: String,
    /// The mirror is not up to date, so the push cannot be planned yet: it would send what
    /// `convert` and `tag` are about to change.
    pub pending_convert: bool,
    #[serde(flatten)]
    pub planned: Option<Stage<push::Summary>>,
    /// rclone or the remote failed, so the push could not be planned (named on stderr).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `rclone` is the one found, or why none could be (which fails the push part only).
pub fn run(
    settings: &StatusSettings,
    rclone: Option<Result<&Rclone, &anyhow::Error>>,
) -> anyhow::Result<Status> {
    debug_assert!(settings.convert.dry_run);
    // A run changing staging meanwhile (it holds `crate::lock`) may have put a file in place
    // after its record was read: planned again until the manifest did not change during it.
    let staging = &settings.convert.staging;
    let mut tries = 0;
    let (mut converted, mut tagged, manifest) = loop {
        let before = manifest::fingerprint(staging);
        let previewed = convert::preview(&settings.convert)?;
        tries += 1;
        if tries == 10 || manifest::fingerprint(staging) == before {
            break previewed;
        }
    };
    converted.failed.iter().for_each(report::Failure::print);
    let current = converted.refused.is_none() && is_current(&converted.counts);
    let push = match (&settings.push, rclone) {
        (Some(push), Some(rclone)) => {
            let mut status = PushStatus {
                remote: rclone::redact(&push.remote),
                pending_convert: !current,
                planned: None,
                error: None,
            };
            let planned = match rclone {
                Err(e) => Err(format!("{e:#}")),
                Ok(_) if !current => Ok(None),
                Ok(rclone) => {
                    debug_assert!(push.dry_run);
                    match push::run_with(push, rclone, Some(&manifest)) {
                        Ok(mut summary) => {
                            let plan = std::mem::take(&mut summary.plan_lines);
                            Ok(Some(Stage { summary, plan }))
                        }
                        // The remote's failure leaves the local part standing.
                        Err(e) if e.is::<RcloneError>() && !interrupt::interrupted() => {
                            Err(format!("{e:#}"))
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            match planned {
                Ok(planned) => status.planned = planned,
                Err(e) => status.error = Some(e),
            }
            Some(status)
        }
        _ => None,
    };
    let convert_plan = std::mem::take(&mut converted.plan_lines);
    let tag_plan = std::mem::take(&mut tagged.plan_lines);
    Ok(Status {
        tag: Stage {
            summary: TagSummary::from(&tagged),
            plan: tag_plan,
        },
        convert: Stage {
            summary: converted,
            plan: convert_plan,
        },
        push,
    })
}

/// Whether the staged mirror already is what the library and the settings say: `convert` (and
/// so `tag`, whose work is a part of convert's) has nothing to do.
fn is_current(counts: &Counts) -> bool {
    Counts {
        skipped: 0,
        ..*counts
    } == Counts::default()
}

impl Status {
    /// Files that failed in any stage (each already named on stderr).
    pub fn failed(&self) -> usize {
        let push = self.push.as_ref().and_then(|p| p.planned.as_ref());
        self.convert.summary.failed.len() + push.map_or(0, |p| p.summary.failed.len())
    }

    /// Why the push part could not be planned: rclone or the remote failed.
    pub fn remote_error(&self) -> Option<&str> {
        self.push.as_ref()?.error.as_deref()
    }

    /// Why a stage's guard would refuse to act, if one would.
    pub fn refused(&self) -> Option<&str> {
        let push = self.push.as_ref().and_then(|p| p.planned.as_ref());
        (self.convert.summary.refused.as_deref())
            .or_else(|| push.and_then(|p| Some(p.summary.refused.as_ref()?.reason.as_str())))
    }

    pub fn print(&self, out: &mut impl Write) -> io::Result<()> {
        let c = &self.convert.summary;
        let n = c.counts;
        writeln!(
            out,
            "convert: would convert {}, copy {}, retag {}, rename {}, remove {}; {} unchanged.",
            n.converted, n.copied, n.retagged, n.renamed, n.removed, n.skipped
        )?;
        stage_tail(
            out,
            &self.convert.plan,
            c.refused.as_deref(),
            c.failed.len(),
        )?;
        let t = &self.tag.summary;
        write!(
            out,
            "tag: would tag {}; {} unchanged",
            t.tagged, t.unchanged
        )?;
        if t.pending_convert > 0 {
            write!(out, "; {} need `musync convert` first", t.pending_convert)?;
        }
        writeln!(out, ".")?;
        stage_tail(out, &self.tag.plan, None, 0)?;
        let Some(push) = &self.push else {
            return Ok(());
        };
        if push.error.is_some() {
            return writeln!(
                out,
                "push to {}: not planned: the remote failed (the error is on stderr).",
                push.remote
            );
        }
        let Some(Stage { summary: p, plan }) = &push.planned else {
            return writeln!(
                out,
                "push to {}: waits for the mirror to be up to date: run `musync convert` (or \
                 `musync sync`).",
                push.remote
            );
        };
        writeln!(out, "push to {}: {}.", push.remote, p.counts())?;
        let refused = p.refused.as_ref().map(|r| r.reason.as_str());
        stage_tail(out, plan, refused, p.failed.len())
    }
}

/// The first lines of a stage's plan, then its refusal and failures.
fn stage_tail(
    out: &mut impl Write,
    plan: &[String],
    refused: Option<&str>,
    failed: usize,
) -> io::Result<()> {
    for line in plan.iter().take(SHOWN) {
        writeln!(out, "  {line}")?;
    }
    if plan.len() > SHOWN {
        writeln!(out, "  ... and {} more", plan.len() - SHOWN)?;
    }
    if let Some(why) = refused {
        writeln!(out, "  refused: {why}")?;
    }
    if failed > 0 {
        writeln!(out, "  {}", report::files_failed(failed))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_files_alone_leave_the_mirror_current() {
        let mut counts = Counts {
            skipped: 8,
            ..Counts::default()
        };
        assert!(is_current(&counts));
        counts.removed = 1;
        assert!(!is_current(&counts));
    }

    fn status(plan: usize, push: Option<PushStatus>) -> Status {
        let convert = convert::Summary {
            counts: Counts {
                converted: plan,
                skipped: 3,
                ..Counts::default()
            },
            dry_run: true,
            ..convert::Summary::default()
        };
        Status {
            tag: Stage {
                summary: TagSummary::from(&convert::Summary {
                    pending: plan,
                    ..convert::Summary::default()
                }),
                plan: vec![],
            },
            convert: Stage {
                summary: convert,
                plan: (0..plan).map(|i| format!("convert {i}")).collect(),
            },
            push,
        }
    }

    fn printed(status: &Status) -> String {
        let mut out = Vec::new();
        status.print(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn long_plans_are_cut_after_ten_lines() {
        let pending = PushStatus {
            remote: "nas:music".into(),
            pending_convert: true,
            planned: None,
            error: None,
        };
        let text = printed(&status(12, Some(pending)));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "convert: would convert 12, copy 0, retag 0, rename 0, remove 0; 3 unchanged."
        );
        assert_eq!(
            lines[1..=10],
            (0..10)
                .map(|i| format!("  convert {i}"))
                .collect::<Vec<_>>()
        );
        assert_eq!(lines[11], "  ... and 2 more");
        assert_eq!(
            lines[12],
            "tag: would tag 0; 0 unchanged; 12 need `musync convert` first."
        );
        assert!(lines[13].starts_with("push to nas:music: waits for the mirror"));
        assert_eq!(lines.len(), 14);
    }

    #[test]
    fn a_planned_push_is_counted_and_json_has_every_stage() {
        let planned = PushStatus {
            remote: "/mnt/usb".into(),
            pending_convert: false,
            planned: Some(Stage {
                summary: push::Summary {
                    uploaded: 1,
                    bytes_uploaded: 99,
                    unchanged: 7,
                    dry_run: true,
                    ..push::Summary::default()
                },
                plan: vec!["upload a.mp3 (99 bytes)".into()],
            }),
            error: None,
        };
        let s = status(0, Some(planned));
        let text = printed(&s);
        assert!(
            text.ends_with(
                "push to /mnt/usb: would upload 1 files (99 bytes), move 0, delete 0, back up 0; \
                 7 unchanged.\n  upload a.mp3 (99 bytes)\n"
            ),
            "{text}"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["convert"]["converted"], 0);
        assert_eq!(json["tag"]["pending_convert"], 0);
        assert_eq!(json["push"]["uploaded"], 1);
        assert_eq!(json["push"]["pending_convert"], false);
        assert_eq!(json["push"]["plan"][0], "upload a.mp3 (99 bytes)");
        let none = serde_json::to_value(status(0, None)).unwrap();
        assert!(none["push"].is_null());
    }

    #[test]
    fn a_remote_that_failed_leaves_the_local_lines_and_says_so() {
        let failed = PushStatus {
            remote: "nas:music".into(),
            pending_convert: false,
            planned: None,
            error: Some("rclone lsjson failed (exit 1): no route to host".into()),
        };
        let s = status(0, Some(failed));
        assert_eq!(
            s.remote_error(),
            Some("rclone lsjson failed (exit 1): no route to host")
        );
        let text = printed(&s);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("convert: would convert 0"), "{text}");
        assert!(lines[1].starts_with("tag: would tag 0"), "{text}");
        assert_eq!(
            lines[2],
            "push to nas:music: not planned: the remote failed (the error is on stderr)."
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["push"]["error"],
            "rclone lsjson failed (exit 1): no route to host"
        );
    }

    #[test]
    fn a_refused_push_is_planned_but_not_counted_as_done() {
        let refused = PushStatus {
            remote: "nas:music".into(),
            pending_convert: false,
            planned: Some(Stage {
                summary: push::Summary {
                    unchanged: 3,
                    dry_run: true,
                    refused: Some(push::Refused {
                        reason: "over the cap".into(),
                        planned: Some(push::Planned {
                            delete: 5,
                            back_up: 5,
                            ..push::Planned::default()
                        }),
                    }),
                    ..push::Summary::default()
                },
                plan: vec![],
            }),
            error: None,
        };
        let s = status(0, Some(refused));
        assert_eq!(s.refused(), Some("over the cap"));
        assert!(
            printed(&s).ends_with(
                "push to nas:music: would be refused; it would upload 0 files (0 bytes), move 0, \
                 delete 5, back up 5; 3 unchanged.\n  refused: over the cap\n"
            ),
            "{}",
            printed(&s)
        );
    }
}
