//! The layering check: reads every file under `src/`, builds the graph of which module uses which
//! (`use crate::…`, `use super::…`, `self::…` and `crate::x::…` paths in code) and fails naming
//! any import cycle. It checks cycles between the top-level modules (`convert::plan` counts as
//! `convert`) and, inside each module, between its own submodules (`convert::outputs` and
//! `convert::plan`); a module using its own parent or child is not an edge. A name re-exported by a
//! parent is seen as the parent's. `src/main.rs` is another crate and is left out.
//!
//! The layers, lowest first; a module uses only modules below it (`main.rs` sits on top):
//! 1. leaves: `fsutil`, `relpath`, `interrupt`, `subsonic`, `genre` (the genre rules, used by both
//!    convert and tag), then `audio` and `metadata` (on `fsutil`);
//! 2. the outside world and output: `rclone`, then `report` (rclone's stats for the progress bar;
//!    never the CLI: logging takes a `report::LogOptions`) and `overlap`;
//! 3. shared state: `scan`, `settings`, `manifest`, `lock`;
//! 4. the stages: `convert` (inside it `outputs` ← `plan` ← `facts`, `exec`), `tag` (calls
//!    `convert`), `push` (inside it `plan` ← `state`), then `status`, `summary`, `verify`, `init`;
//! 5. the command line: `config` (the config file as the flags' defaults), `cli`, `manual`, and
//!    `fuzzing` (the fuzz targets' checks).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path: `["convert", "plan"]`; the crate root is empty.
type ModPath = Vec<String>;

/// One path in the code that names another module: where it is, and the path as written.
#[derive(Clone, Debug)]
struct Reference {
    file: String,
    line: usize,
    from: ModPath,
    /// As written, `crate`/`super`/`self` included: `["super", "plan", "Wanted"]`.
    path: Vec<String>,
}

/// The edges between the children of one module (the crate root is `[]`): child → child → the
/// places that make the edge.
type Level = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// Every level's edges, keyed by the module whose children they join.
#[derive(Debug, Default)]
struct Graph {
    levels: BTreeMap<ModPath, Level>,
}

/// The `.rs` files under `dir`, as (path relative to `dir` with `/`, text), `main.rs` left out.
fn read_sources(dir: &Path) -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.expect("reading a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).expect("under src/");
                let rel = rel.to_string_lossy().replace('\\', "/");
                if rel == "main.rs" || rel.starts_with("bin/") {
                    continue;
                }
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                out.push((rel, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

/// The module a file is, from its path: `lib.rs` → `[]`, `convert/mod.rs` and `convert.rs` →
/// `["convert"]`.
fn module_of_path(rel: &str) -> ModPath {
    let stem = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut parts: ModPath = stem.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The files that a `#[path = "x.rs"] mod name;` makes a module other than their path says:
/// file → module.
fn path_attributes(sources: &[(String, String)]) -> BTreeMap<String, ModPath> {
    let mut out = BTreeMap::new();
    for (rel, text) in sources {
        let dir = rel.rfind('/').map_or("", |i| &rel[..=i]);
        let mut pending: Option<String> = None;
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("#[path = \"") {
                pending = rest.split('"').next().map(str::to_owned);
            } else if let Some(file) = &pending {
                if line.starts_with("#[") {
                    continue;
                }
                let name = line
                    .trim_start_matches("pub ")
                    .trim_start_matches("pub(crate) ")
                    .strip_prefix("mod ")
                    .and_then(|r| r.strip_suffix(';'));
                if let Some(name) = name {
                    let mut module = module_of_path(rel);
                    module.push(name.trim().to_owned());
                    out.insert(format!("{dir}{file}"), module);
                }
                pending = None;
            }
        }
    }
    out
}

/// `text` with its comments, string and character literals blanked out (newlines kept, so line
/// numbers still hold), leaving only code.
fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, s: &[char]| {
        out.extend(s.iter().map(|&ch| if ch == '\n' { '\n' } else { ' ' }));
    };
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let rest = &c[i..];
        let prev_ident = i > 0 && ident(c[i - 1]);
        if rest.starts_with(&['/', '/']) {
            let end = rest.iter().position(|&ch| ch == '\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(&['/', '*']) {
            let (mut depth, mut j) = (0, 0);
            while j < rest.len() {
                if rest[j..].starts_with(&['/', '*']) {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(&['*', '/']) {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &rest[..j]);
            i += j;
        } else if rest[0] == 'r'
            && (!prev_ident
                || (i > 0 && matches!(c[i - 1], 'b' | 'c') && !(i > 1 && ident(c[i - 2]))))
            && rest[1..]
                .iter()
                .position(|&ch| ch != '#')
                .is_some_and(|h| rest[1 + h] == '"')
        {
            let hashes = rest[1..].iter().take_while(|&&ch| ch == '#').count();
            let mut closing = vec!['"'];
            closing.extend(std::iter::repeat_n('#', hashes));
            let body = 2 + hashes;
            let end = (body..rest.len())
                .find(|&j| rest[j..].starts_with(&closing))
                .map_or(rest.len(), |j| j + closing.len());
            out.push('r');
            blank(&mut out, &rest[1..end]);
            i += end;
        } else if rest[0] == '"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != '"' {
                j += if rest[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == '\''
            && (!prev_ident || (c[i - 1] == 'b' && !(i > 1 && ident(c[i - 2]))))
        {
            // A character literal ('x', b'{', '\n', '\'', '\u{1b}'), or else a lifetime, kept.
            let end = if rest.get(1) == Some(&'\\') {
                let after = rest.get(3..).unwrap_or_default();
                after.iter().position(|&ch| ch == '\'').map(|p| p + 4)
            } else if rest.get(2) == Some(&'\'') {
                Some(3)
            } else {
                None
            };
            match end {
                Some(end) => {
                    blank(&mut out, &rest[..end]);
                    i += end;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Ident(String),
    Path,
    Other(char),
}

/// The code's tokens with their line numbers: identifiers, `::`, and single characters.
fn tokens(code: &str) -> Vec<(usize, Token)> {
    let c: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((line, Token::Ident(c[start..i].iter().collect())));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push((line, Token::Path));
            i += 2;
        } else {
            out.push((line, Token::Other(ch)));
            i += 1;
        }
    }
    out
}

/// The paths that start at `tokens[i]` (`crate`, `super` or `self`), a use tree's groups
/// expanded: `crate::{a, b::{self, C}}` gives `crate::a`, `crate::b::self` and `crate::b::C`.
/// Returns them and the index past the path.
fn paths_at(
    tokens: &[(usize, Token)],
    mut i: usize,
    prefix: &[String],
) -> (Vec<Vec<String>>, usize) {
    let mut path = prefix.to_vec();
    loop {
        match tokens.get(i).map(|t| &t.1) {
            Some(Token::Ident(name)) => {
                path.push(name.clone());
                i += 1;
            }
            Some(Token::Other('{')) => {
                let mut all = Vec::new();
                i += 1;
                loop {
                    match tokens.get(i).map(|t| &t.1) {
                        None => return (all, i),
                        Some(Token::Other('}')) => return (all, i + 1),
                        Some(Token::Other(',')) => i += 1,
                        Some(Token::Other('*')) => {
                            all.push(path.clone());
                            i += 1;
                        }
                        Some(Token::Ident(a)) if a == "as" => i += 2,
                        Some(_) => {
                            let (more, next) = paths_at(tokens, i, &path);
                            all.extend(more);
                            i = next.max(i + 1);
                        }
                    }
                }
            }
            _ => return (vec![path], i),
        }
        if tokens.get(i).map(|t| &t.1) == Some(&Token::Path) {
            i += 1;
        } else {
            return (vec![path], i);
        }
    }
}

/// The modules a file defines (inline `mod x { … }` included) and the references it makes.
fn references(file: &str, module: &ModPath, text: &str) -> (Vec<ModPath>, Vec<Reference>) {
    let toks = tokens(&strip(text));
    let mut modules = vec![module.clone()];
    let mut refs = Vec::new();
    // The inline modules we are in, with the brace depth inside each.
    let mut stack: Vec<(ModPath, usize)> = vec![(module.clone(), 0)];
    let mut depth = 0;
    let mut i = 0;
    while i < toks.len() {
        let current = stack.last().expect("the file's own module").0.clone();
        match &toks[i].1 {
            Token::Ident(kw) if kw == "mod" => {
                if let (Some((_, Token::Ident(name))), Some((_, Token::Other('{')))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    let mut inner = current.clone();
                    inner.push(name.clone());
                    modules.push(inner.clone());
                    depth += 1;
                    stack.push((inner, depth));
                    i += 3;
                    continue;
                }
            }
            Token::Other('{') => depth += 1,
            Token::Other('}') => {
                if stack.len() > 1 && stack.last().is_some_and(|s| s.1 == depth) {
                    stack.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Token::Ident(start)
                if matches!(start.as_str(), "crate" | "super" | "self")
                    && toks.get(i + 1).map(|t| &t.1) == Some(&Token::Path)
                    && (i == 0 || toks[i - 1].1 != Token::Path) =>
            {
                let (paths, next) = paths_at(&toks, i, &[]);
                for path in paths {
                    refs.push(Reference {
                        file: file.to_owned(),
                        line: toks[i].0,
                        from: current.clone(),
                        path,
                    });
                }
                i = next;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    (modules, refs)
}

/// The module a path names: its longest prefix that is a module. `None` for a `super` past the
/// crate root.
fn resolve(reference: &Reference, modules: &BTreeSet<ModPath>) -> Option<ModPath> {
    let mut base = reference.from.clone();
    let mut rest = reference.path.as_slice();
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        _ => {
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "super" => {
                        base.pop()?;
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
    }
    let mut target = base.clone();
    for segment in rest {
        target.push(segment.clone());
        if !modules.contains(&target) {
            target.pop();
            break;
        }
    }
    Some(target)
}

/// The module graph of the given sources, (path relative to `src/`, text).
fn module_graph(sources: &[(String, String)]) -> Graph {
    let renamed = path_attributes(sources);
    let mut modules = BTreeSet::new();
    let mut refs = Vec::new();
    for (rel, text) in sources {
        let module = renamed
            .get(rel)
            .cloned()
            .unwrap_or_else(|| module_of_path(rel));
        let (defined, made) = references(&format!("src/{rel}"), &module, text);
        modules.extend(defined);
        refs.extend(made);
    }
    let mut graph = Graph::default();
    for r in &refs {
        let Some(to) = resolve(r, &modules) else {
            continue;
        };
        let common = r.from.iter().zip(&to).take_while(|(a, b)| a == b).count();
        // One is inside the other: a child using its parent, or a parent its child.
        if common == r.from.len() || common == to.len() {
            continue;
        }
        let at = format!("{}:{}: {}", r.file, r.line, r.path.join("::"));
        graph
            .levels
            .entry(to[..common].to_vec())
            .or_default()
            .entry(r.from[common].clone())
            .or_default()
            .entry(to[common].clone())
            .or_default()
            .push(at);
    }
    graph
}

/// A set of nodes that all reach one another, and its shortest cycle from its first node.
#[derive(Debug, PartialEq, Eq)]
struct Knot {
    members: Vec<String>,
    /// In order, the first repeated at the end.
    cycle: Vec<String>,
}

/// The knots of a directed graph: each set of two or more nodes that all reach one another.
fn find_cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Knot> {
    // Reachability by search from each node; small graphs, so plain and obviously right.
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for m in edges.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    todo.push(m.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|n| (n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut cycles = Vec::new();
    for (&start, reached) in &reaches {
        if done.contains(start) || !reached.contains(start) {
            continue;
        }
        // The nodes that lie on a cycle with `start`.
        let knot: BTreeSet<&String> = reached
            .iter()
            .filter(|n| reaches.get(n).is_some_and(|r| r.contains(start)))
            .collect();
        done.extend(knot.iter().map(|n| (*n).clone()));
        // Shortest way round from `start` back to itself, inside the knot.
        let mut came_from: BTreeMap<&String, &String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        'search: while let Some(n) = queue.pop_front() {
            for m in edges.get(n).into_iter().flatten() {
                if m == start {
                    came_from.insert(start, n);
                    break 'search;
                }
                if knot.contains(m) && !came_from.contains_key(m) {
                    came_from.insert(m, n);
                    queue.push_back(m);
                }
            }
        }
        let mut cycle = vec![start.clone()];
        let mut n = came_from[start];
        while n != start {
            cycle.push(n.clone());
            n = came_from[n];
        }
        cycle.push(start.clone());
        cycle.reverse();
        let members = knot.into_iter().cloned().collect();
        cycles.push(Knot { members, cycle });
    }
    cycles
}

impl Graph {
    /// Each cycle, described: the modules round it and the lines that make each step.
    fn cycles(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (parent, level) in &self.levels {
            let edges = level
                .iter()
                .map(|(from, to)| (from.clone(), to.keys().cloned().collect()))
                .collect();
            for Knot { members, cycle } in find_cycles(&edges) {
                let inside = if parent.is_empty() {
                    "the crate".to_owned()
                } else {
                    parent.join("::")
                };
                let mut text = format!("import cycle in {inside}: {}", cycle.join(" -> "));
                if members.len() + 1 > cycle.len() {
                    let all = members.join(", ");
                    text.push_str(&format!(" (a knot of {} modules: {all})", members.len()));
                }
                for step in cycle.windows(2) {
                    let at = &level[&step[0]][&step[1]];
                    text.push_str(&format!(
                        "\n  {} -> {}: {}",
                        step[0],
                        step[1],
                        at.join(", ")
                    ));
                }
                out.push(text);
            }
        }
        out
    }

    fn has_edge(&self, parent: &[&str], from: &str, to: &str) -> bool {
        let parent: ModPath = parent.iter().map(|s| (*s).to_owned()).collect();
        self.levels
            .get(&parent)
            .and_then(|l| l.get(from))
            .is_some_and(|t| t.contains_key(to))
    }
}

fn sources(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
        .collect()
}

#[test]
fn the_crate_has_no_import_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = read_sources(&src);
    let graph = module_graph(&files);
    // The check sees the crate: files read, and edges it must find at both levels.
    assert!(
        files.len() > 20,
        "only {} files read in {}",
        files.len(),
        src.display()
    );
    assert!(graph.has_edge(&[], "convert", "scan"));
    assert!(graph.has_edge(&["convert"], "plan", "outputs"));
    let cycles = graph.cycles();
    assert!(
        cycles.is_empty(),
        "{}\n(see the layers in src/layers_tests.rs)",
        cycles.join("\n")
    );
}

#[test]
fn find_cycles_finds_the_cycle_of_a_made_up_graph() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry((*a).to_owned())
                .or_default()
                .insert((*b).to_owned());
        }
        g
    };
    let knotted = graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e")]);
    let knot = |members: &[&str], cycle: &[&str]| Knot {
        members: members.iter().map(|s| (*s).to_owned()).collect(),
        cycle: cycle.iter().map(|s| (*s).to_owned()).collect(),
    };
    assert_eq!(
        find_cycles(&knotted),
        vec![knot(&["a", "b", "c"], &["a", "b", "c", "a"])]
    );
    let two = graph(&[("a", "b"), ("b", "a"), ("c", "d"), ("d", "c"), ("b", "c")]);
    assert_eq!(
        find_cycles(&two),
        vec![
            knot(&["a", "b"], &["a", "b", "a"]),
            knot(&["c", "d"], &["c", "d", "c"])
        ]
    );
    // Two cycles through one node make one knot, named whole.
    let eight = graph(&[("a", "b"), ("b", "a"), ("a", "c"), ("c", "d"), ("d", "a")]);
    assert_eq!(
        find_cycles(&eight),
        vec![knot(&["a", "b", "c", "d"], &["a", "b", "a"])]
    );
    let layered = graph(&[("a", "b"), ("b", "c"), ("a", "c"), ("d", "a")]);
    assert!(find_cycles(&layered).is_empty());
}

#[test]
fn module_graph_reads_use_trees_paths_and_submodules_but_not_comments_or_strings() {
    let files = sources(&[
        ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\npub mod p;\n"),
        (
            "a.rs",
            "// use crate::c;\nuse crate::b::{self, X};\nconst S: &str = \"crate::c::y\";\n\
             const R: &str = r#\"crate::c::\"#;\nfn f<'a>(x: &'a str) -> char { 'c' }\n\
             #[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
        ),
        ("b.rs", "fn g() { crate::c::h(); }\n"),
        ("c.rs", "use crate::{d::e, a::{f as g, tests}};\n"),
        ("p/mod.rs", "mod x;\nmod y;\nmod z;\npub struct T;\n"),
        (
            "p/x.rs",
            "use super::T;\nuse super::y::U;\nmod inner {\n    const B: u8 = b'}';\n    \
             const Q: char = '\\'';\n    use super::super::z::W;\n}\n",
        ),
        ("p/z.rs", "pub struct W;\n"),
        (
            "p/y.rs",
            "pub struct U;\nfn k() -> super::x::V { todo!() }\n",
        ),
    ]);
    let graph = module_graph(&files);
    assert!(graph.has_edge(&[], "a", "b"));
    assert!(graph.has_edge(&[], "b", "c"));
    assert!(graph.has_edge(&[], "c", "a"));
    // Neither the comment, the strings nor `use super::*` in a's own tests reach c.
    assert!(!graph.has_edge(&[], "a", "c"));
    assert!(graph.has_edge(&["p"], "x", "y"));
    // Seen from `p::x::inner`, past two character literals that hold a brace and a quote.
    assert!(graph.has_edge(&["p"], "x", "z"));
    let cycles = graph.cycles();
    assert_eq!(cycles.len(), 2, "{cycles:#?}");
    assert!(
        cycles[0].starts_with(
            "import cycle in the crate: a -> b -> c -> a\n  a -> b: src/a.rs:2: crate::b::self"
        ),
        "{}",
        cycles[0]
    );
    assert!(
        cycles[1]
            .starts_with("import cycle in p: x -> y -> x\n  x -> y: src/p/x.rs:2: super::y::U"),
        "{}",
        cycles[1]
    );
}

#[test]
fn a_path_attribute_places_the_file_in_the_module_that_declares_it() {
    let files = sources(&[
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        (
            "a.rs",
            "#[cfg(test)]\n#[path = \"a_tests.rs\"]\nmod tests;\n",
        ),
        ("a_tests.rs", "use super::*;\nuse crate::b::Z;\n"),
        ("b.rs", "use crate::a::Y;\n"),
    ]);
    let graph = module_graph(&files);
    // a's tests are `a::tests`, so `super` is `a`, and the test file ties a to b.
    assert!(graph.has_edge(&[], "a", "b"));
    assert!(!graph.has_edge(&[], "a_tests", "b"));
    assert_eq!(graph.cycles().len(), 1);
}
