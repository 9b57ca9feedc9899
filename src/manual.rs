//! The documentation generated from the command line itself: shell completion scripts
//! (clap_complete) and roff manual pages (clap_mangen). It renders bytes; it does no I/O, so the
//! caller decides where they go.

use clap::CommandFactory;
use clap_mangen::roff::{Roff, bold, roman};

use crate::cli::Cli;

/// The completion script of `musync` for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "musync", &mut script);
    script
}

/// The manual pages: `musync.1` first, then one per subcommand (`musync-convert.1`…), as
/// (file name, roff) pairs.
pub fn pages() -> Vec<(String, Vec<u8>)> {
    let mut top = Cli::command().disable_help_subcommand(true);
    // Gives each subcommand its display name, `musync-convert`, which names its page.
    top.build();
    let subcommands: Vec<clap::Command> = top
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .cloned()
        .collect();
    std::iter::once(top)
        .chain(subcommands)
        .map(|command| {
            let name = command
                .get_display_name()
                .unwrap_or(command.get_name())
                .to_owned();
            (format!("{name}.1"), page(command))
        })
        .collect()
}

/// The page of `command`: clap_mangen's sections, with the exit codes (the `after_help`) as an
/// EXIT STATUS section in place of its catch-all EXTRA one.
fn page(command: clap::Command) -> Vec<u8> {
    let exit_codes = command.get_after_help().map(ToString::to_string);
    let has_subcommands = command.has_subcommands();
    let man = clap_mangen::Man::new(command);
    let mut out = Vec::new();
    let sections = [
        clap_mangen::Man::render_title,
        clap_mangen::Man::render_name_section,
        clap_mangen::Man::render_synopsis_section,
        clap_mangen::Man::render_description_section,
        clap_mangen::Man::render_options_section,
    ];
    for section in sections {
        section(&man, &mut out).expect("writing to a Vec");
    }
    if has_subcommands {
        man.render_subcommands_section(&mut out)
            .expect("writing to a Vec");
    }
    if let Some(text) = exit_codes {
        exit_status(&text)
            .to_writer(&mut out)
            .expect("writing to a Vec");
    }
    man.render_version_section(&mut out)
        .expect("writing to a Vec");
    out
}

/// `Exit codes:` then `  CODE  meaning` lines, as a roff EXIT STATUS section.
fn exit_status(text: &str) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    for line in text.lines().skip(1).map(str::trim) {
        let (code, meaning) = line.split_once(' ').unwrap_or((line, ""));
        roff.control("TP", [])
            .text([bold(code)])
            .text([roman(meaning.trim_start())]);
    }
    roff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_gets_a_page_named_after_it() {
        let names: Vec<String> = pages().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names[0], "musync.1");
        for sub in [
            "convert",
            "tag",
            "push",
            "sync",
            "bisync",
            "pull",
            "prune-backups",
            "man",
        ] {
            assert!(names.contains(&format!("musync-{sub}.1")), "{names:?}");
        }
        assert!(!names.contains(&"musync-help.1".to_owned()), "{names:?}");
    }

    #[test]
    fn exit_codes_become_one_tagged_paragraph_each() {
        let roff = exit_status("Exit codes:\n  0    all done\n  130  interrupted").to_roff();
        assert_eq!(
            roff,
            ".SH \"EXIT STATUS\"\n.TP\n\\fB0\\fR\nall done\n.TP\n\\fB130\\fR\ninterrupted\n"
        );
    }
}
