//! Positioned YAML: parse a config or caption file once, then validate it while reporting
//! every problem with its file, dotted field path, line and column.
//!
//! Two parsers read the same text. `serde_yaml` gives the value (YAML 1.2 scalar typing,
//! a refusal of alias bombs and of duplicate keys, a positioned syntax error);
//! `yaml-rust2`'s event parser gives a marker for every key and value, kept in an index
//! by key path. Validation code walks the value with [`Node`] and asks the index where a
//! bad value sits. All positions are 1-based.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::Marker;

/// One thing wrong with a file, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: Option<PathBuf>,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Dotted path of the field (`watch.settle`, `accounts.main.cookie_env`, `watch.extensions[2]`).
    /// For an unknown key it is the mapping that holds the key (empty at the top level);
    /// the message names the key.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}:", file.display())?;
        }
        write!(f, "{}:{}: ", self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one or more files, in file and position order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn new() -> Self {
        Problems(Vec::new())
    }

    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    pub fn extend(&mut self, other: Problems) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter()
    }

    /// `Ok(value)` when nothing was found, else every problem sorted by position.
    pub(crate) fn into_result<T>(mut self, value: T) -> Result<T, Problems> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            self.sort();
            Err(self)
        }
    }

    /// Sort by file, line, column (stable, so equal positions keep discovery order).
    pub fn sort(&mut self) {
        self.0
            .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Dotted form of a path: `watch.extensions[2]`.
pub(crate) fn dotted(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Seg::Index(i) => {
                out.push_str(&format!("[{i}]"));
            }
        }
    }
    out
}

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    const START: Pos = Pos { line: 1, column: 1 };

    fn from_marker(mark: &Marker) -> Pos {
        // yaml-rust2: line is 1-based, col is 0-based (counted in characters).
        Pos {
            line: mark.line().max(1),
            column: mark.col() + 1,
        }
    }
}

/// Where a key and its value start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    key: Option<Pos>,
    value: Pos,
}

/// A parsed YAML document: its value, where each part of it sits, and its file.
#[derive(Debug)]
pub struct Document {
    value: Value,
    index: HashMap<Vec<Seg>, Span>,
    file: Option<PathBuf>,
    /// The text itself, to look at what YAML throws away (comments).
    source: String,
}

impl Document {
    /// Parse `text`. An empty document is an empty mapping. Syntax errors, duplicate keys
    /// and alias bombs are one problem each (parsing stops at the first).
    pub fn parse(text: &str, file: Option<&Path>) -> Result<Document, Problems> {
        let file = file.map(Path::to_path_buf);
        let one = |line: usize, column: usize, message: String| {
            Problems(vec![Problem {
                file: file.clone(),
                line,
                column,
                field: String::new(),
                message,
            }])
        };
        // yaml-rust2 first: it is not recursive and linear in the nesting depth, so it
        // refuses a deeply nested document cheaply before libyaml (quadratic there) sees it.
        let indexed = match build_index(text) {
            Ok(indexed) => indexed,
            Err(IndexError { pos, message }) => {
                return Err(one(
                    pos.line,
                    pos.column,
                    format!("invalid YAML: {message}"),
                ));
            }
        };
        let mut value = match serde_yaml::from_str::<Value>(text) {
            Ok(Value::Null) => Value::Mapping(Mapping::new()),
            Ok(value) => value,
            Err(err) => {
                let mut problem = syntax_problem(&err, file.clone());
                if let (Some((key, pos)), true) = (
                    &indexed.duplicate,
                    problem.message.contains("duplicate entry"),
                ) {
                    problem.line = pos.line;
                    problem.column = pos.column;
                    problem.message = format!("invalid YAML: duplicate key `{key}`");
                }
                if problem.message.contains("repetition limit exceeded") {
                    // serde_yaml refuses an alias bomb without saying where or why.
                    let pos = indexed.first_alias.unwrap_or(Pos::START);
                    problem.line = pos.line;
                    problem.column = pos.column;
                    problem.message = "invalid YAML: its aliases (`*name`) expand to far too \
                                       many values (an \"alias bomb\"); write the values out"
                        .to_owned();
                }
                return Err(Problems(vec![problem]));
            }
        };
        if let Err(err) = value.apply_merge() {
            return Err(Problems(vec![syntax_problem(&err, file.clone())]));
        }
        Ok(Document {
            value,
            index: indexed.index,
            file,
            source: text.to_owned(),
        })
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The top of the document.
    pub fn root(&self) -> Node<'_> {
        Node {
            doc: self,
            value: &self.value,
            path: Vec::new(),
        }
    }

    /// A problem at the start of the file, for things that belong to no one field
    /// (a missing required field).
    pub(crate) fn problem_at_start(&self, field: &str, message: impl Into<String>) -> Problem {
        Problem {
            file: self.file.clone(),
            line: Pos::START.line,
            column: Pos::START.column,
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// The span of `path`, or of its nearest indexed ancestor (a value reached through an
    /// alias or a merge key has no position of its own).
    fn span(&self, path: &[Seg]) -> Span {
        let mut len = path.len();
        loop {
            if let Some(span) = self.index.get(&path[..len]) {
                return *span;
            }
            if len == 0 {
                return Span {
                    key: None,
                    value: Pos::START,
                };
            }
            len -= 1;
        }
    }
}

fn syntax_problem(err: &serde_yaml::Error, file: Option<PathBuf>) -> Problem {
    let (line, column) = err
        .location()
        .map_or((1, 1), |loc| (loc.line().max(1), loc.column().max(1)));
    let mut message = strip_location(&err.to_string());
    if message.contains("as u128") || message.contains("as i128") {
        message = "this number is too large for YAML; write it as a quoted string".to_owned();
    }
    if message.contains("mapping values are not allowed") {
        // Mostly `text: a: b`, a colon inside an unquoted value.
        message.push_str(" (a `: ` inside an unquoted value; put the value in quotes)");
    }
    Problem {
        file,
        line,
        column,
        field: String::new(),
        message: format!("invalid YAML: {message}"),
    }
}

/// Deeper nesting than this is refused (no config or caption comes close).
pub(crate) const MAX_DEPTH: usize = 64;

struct Indexed {
    index: HashMap<Vec<Seg>, Span>,
    /// The first repeated key, and where it repeats.
    duplicate: Option<(String, Pos)>,
    /// Where the first alias (`*name`) is, to blame for an alias bomb.
    first_alias: Option<Pos>,
}

struct IndexError {
    pos: Pos,
    message: String,
}

/// Removes serde_yaml's " at line L column C" (the position is reported separately).
fn strip_location(message: &str) -> String {
    let Some(at) = message.find(" at line ") else {
        return message.to_owned();
    };
    let rest = &message[at + " at line ".len()..];
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix(" column ").unwrap_or(rest);
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    format!("{}{}", &message[..at], rest)
}

/// Builds the position index from yaml-rust2 events, pulled one at a time (the parser's
/// own `load` recurses per nesting level). Complex keys and values reached through
/// aliases get no entry; lookups then fall back to the nearest ancestor.
fn build_index(text: &str) -> Result<Indexed, IndexError> {
    let mut indexer = Indexer::default();
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    let mut first_alias = None;
    loop {
        let (event, mark) = parser.next_token().map_err(|err| IndexError {
            pos: Pos::from_marker(err.marker()),
            message: err.info().to_owned(),
        })?;
        match event {
            Event::StreamEnd => break,
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(IndexError {
                        pos: Pos::from_marker(&mark),
                        message: format!("nested more than {MAX_DEPTH} levels deep"),
                    });
                }
            }
            Event::MappingEnd | Event::SequenceEnd => depth = depth.saturating_sub(1),
            Event::Alias(_) if first_alias.is_none() => first_alias = Some(Pos::from_marker(&mark)),
            _ => {}
        }
        if let Event::Scalar(_, _, _, Some(tag))
        | Event::MappingStart(_, Some(tag))
        | Event::SequenceStart(_, Some(tag)) = &event
        {
            // A tag changes what a value means (`!!binary` would post base64 as the
            // caption): nothing dropcast reads needs one, so none is guessed at.
            return Err(IndexError {
                pos: Pos::from_marker(&mark),
                message: format!(
                    "YAML tags like `{}` are not accepted; write the value as plain text",
                    tag_text(tag)
                ),
            });
        }
        indexer.on_event(event, mark);
    }
    Ok(Indexed {
        index: indexer.index,
        duplicate: indexer.duplicate,
        first_alias,
    })
}

/// How a tag was written: `!!binary`, `!local`, `!<tag:…>`.
fn tag_text(tag: &yaml_rust2::parser::Tag) -> String {
    match tag.handle.as_str() {
        "tag:yaml.org,2002:" => format!("!!{}", tag.suffix),
        "" => format!("!<{}>", tag.suffix),
        handle if handle.starts_with('!') => format!("{handle}{}", tag.suffix),
        handle => format!("!<{handle}{}>", tag.suffix),
    }
}

enum Frame {
    Map {
        /// `Some(key)` while waiting for a value (`None` inside when the key is not a scalar).
        pending: Option<Option<(String, Pos)>>,
        seen: HashSet<String>,
        pushed: bool,
    },
    Seq {
        next: usize,
        pushed: bool,
    },
}

#[derive(Default)]
struct Indexer {
    index: HashMap<Vec<Seg>, Span>,
    stack: Vec<Frame>,
    path: Vec<Seg>,
    /// Depth inside a subtree that cannot be indexed (a complex key or its value).
    skip: usize,
    duplicate: Option<(String, Pos)>,
}

enum NodeKind {
    Scalar(String),
    Alias,
    Container(bool /* is map */),
}

impl Indexer {
    fn node(&mut self, pos: Pos, kind: NodeKind) {
        // Decide this node's path segment (None: root; Some(None): not indexable).
        let seg: Option<Option<(Seg, Option<Pos>)>> = match self.stack.last_mut() {
            None => None,
            Some(Frame::Seq { next, .. }) => {
                let i = *next;
                *next += 1;
                Some(Some((Seg::Index(i), None)))
            }
            Some(Frame::Map { pending, seen, .. }) => match pending.take() {
                None => {
                    // This node is a key.
                    if let NodeKind::Scalar(s) = &kind
                        && !seen.insert(s.clone())
                        && self.duplicate.is_none()
                    {
                        self.duplicate = Some((s.clone(), pos));
                    }
                    *pending = Some(match &kind {
                        NodeKind::Scalar(s) => Some((s.clone(), pos)),
                        _ => None,
                    });
                    if let NodeKind::Container(_) = kind {
                        self.skip = 1;
                    }
                    return;
                }
                Some(key) => Some(key.map(|(k, kpos)| (Seg::Key(k), Some(kpos)))),
            },
        };
        let pushed = match seg {
            None => {
                self.index.insert(
                    Vec::new(),
                    Span {
                        key: None,
                        value: pos,
                    },
                );
                false
            }
            Some(None) => {
                if let NodeKind::Container(_) = kind {
                    self.skip = 1;
                }
                return;
            }
            Some(Some((seg, key))) => {
                self.path.push(seg);
                self.index
                    .insert(self.path.clone(), Span { key, value: pos });
                true
            }
        };
        match kind {
            NodeKind::Container(true) => self.stack.push(Frame::Map {
                pending: None,
                seen: HashSet::new(),
                pushed,
            }),
            NodeKind::Container(false) => self.stack.push(Frame::Seq { next: 0, pushed }),
            NodeKind::Scalar(_) | NodeKind::Alias => {
                if pushed {
                    self.path.pop();
                }
            }
        }
    }

    fn end(&mut self) {
        let pushed = match self.stack.pop() {
            Some(Frame::Map { pushed, .. } | Frame::Seq { pushed, .. }) => pushed,
            None => false,
        };
        if pushed {
            self.path.pop();
        }
    }
}

impl Indexer {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.skip > 0 {
            match ev {
                Event::MappingStart(..) | Event::SequenceStart(..) => self.skip += 1,
                Event::MappingEnd | Event::SequenceEnd => self.skip -= 1,
                _ => {}
            }
            return;
        }
        let pos = Pos::from_marker(&mark);
        match ev {
            Event::Scalar(text, ..) => self.node(pos, NodeKind::Scalar(text)),
            Event::Alias(_) => self.node(pos, NodeKind::Alias),
            Event::MappingStart(..) => self.node(pos, NodeKind::Container(true)),
            Event::SequenceStart(..) => self.node(pos, NodeKind::Container(false)),
            Event::MappingEnd | Event::SequenceEnd => self.end(),
            _ => {}
        }
    }
}

/// What a value is, for "expected …, found …" messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// A key as text, when it is a scalar (`12: x` has the key `12`).
fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A place in a document: a value, its path, and a way to blame it.
#[derive(Clone, Debug)]
pub struct Node<'a> {
    doc: &'a Document,
    value: &'a Value,
    path: Vec<Seg>,
}

impl<'a> Node<'a> {
    pub fn value(&self) -> &'a Value {
        self.value
    }

    pub fn path(&self) -> &[Seg] {
        &self.path
    }

    /// Dotted path, e.g. `watch.settle`.
    pub fn field(&self) -> String {
        dotted(&self.path)
    }

    pub fn document(&self) -> &'a Document {
        self.doc
    }

    /// Where the value starts.
    pub fn position(&self) -> Pos {
        self.doc.span(&self.path).value
    }

    /// Where the key of this value starts (the value's position for list items and the root).
    pub(crate) fn key_position(&self) -> Pos {
        let span = self.doc.span(&self.path);
        span.key.unwrap_or(span.value)
    }

    /// The comment that ends this value's line, when the value is a plain (unquoted)
    /// scalar: in `text: hello #music`, YAML reads `hello` and drops `#music` as a comment.
    pub(crate) fn trailing_comment(&self) -> Option<&'a str> {
        if !matches!(self.value, Value::String(_)) {
            return None;
        }
        let pos = self.position();
        // Only a value on its key's line: block scalars (`|`, `>`) start on the next one.
        if self.key_position().line != pos.line {
            return None;
        }
        let line = self.doc.source.lines().nth(pos.line.checked_sub(1)?)?;
        let start = line
            .char_indices()
            .nth(pos.column.checked_sub(1)?)
            .map(|(i, _)| i)?;
        let rest = &line[start..];
        if rest.starts_with(['"', '\'', '|', '>']) {
            return None;
        }
        let hash = rest.find(" #").or_else(|| rest.find("\t#"))?;
        Some(rest[hash..].trim())
    }

    /// A problem with this value.
    pub fn problem(&self, message: impl Into<String>) -> Problem {
        self.problem_at(self.position(), self.field(), message)
    }

    /// A problem with this key (e.g. a field that must not be combined with another).
    pub(crate) fn key_problem(&self, message: impl Into<String>) -> Problem {
        self.problem_at(self.key_position(), self.field(), message)
    }

    fn problem_at(&self, pos: Pos, field: String, message: impl Into<String>) -> Problem {
        Problem {
            file: self.doc.file.clone(),
            line: pos.line,
            column: pos.column,
            field,
            message: message.into(),
        }
    }

    fn child(&self, seg: Seg, value: &'a Value) -> Node<'a> {
        let mut path = self.path.clone();
        path.push(seg);
        Node {
            doc: self.doc,
            value,
            path,
        }
    }

    /// "expected X, found Y" at this value.
    pub(crate) fn wrong_type(&self, expected: &str) -> Problem {
        self.problem(format!(
            "expected {expected}, found {}",
            type_name(self.value)
        ))
    }

    /// Read a mapping whose keys are the field names in `known`. Unknown keys are reported
    /// (with a did-you-mean), as is a value that is no mapping. `null` (a key with nothing
    /// after it, or a file of comments) counts as an empty mapping.
    pub fn fields(&self, known: &[&str], problems: &mut Problems) -> Option<Fields<'a>> {
        let entries = self.entries(problems)?;
        let mut present = Vec::new();
        for (key, node) in entries {
            if known.contains(&key.as_str()) {
                present.push((key, node));
            } else {
                let hint = match did_you_mean(&key, known) {
                    Some(near) => format!(", did you mean `{near}`?"),
                    None => format!("; expected one of: {}", list_names(known)),
                };
                let mut problem = node.key_problem(format!("unknown field `{key}`{hint}"));
                problem.field = self.field();
                problems.push(problem);
            }
        }
        Some(Fields {
            node: self.clone(),
            present,
        })
    }

    /// Every entry of a mapping with scalar keys, in file order (`null` is empty).
    pub fn entries(&self, problems: &mut Problems) -> Option<Vec<(String, Node<'a>)>> {
        let map = match self.value {
            Value::Mapping(map) => map,
            Value::Null => return Some(Vec::new()),
            _ => {
                problems.push(self.wrong_type("a mapping"));
                return None;
            }
        };
        let mut out = Vec::with_capacity(map.len());
        for (key, value) in map {
            match key_text(key) {
                Some(text) => out.push((text.clone(), self.child(Seg::Key(text), value))),
                None => problems.push(self.problem(format!(
                    "keys must be plain names, found {} as a key",
                    type_name(key)
                ))),
            }
        }
        Some(out)
    }

    /// The items of a list (`null` is empty).
    pub fn items(&self, problems: &mut Problems) -> Option<Vec<Node<'a>>> {
        match self.value {
            Value::Sequence(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.child(Seg::Index(i), v))
                    .collect(),
            ),
            Value::Null => Some(Vec::new()),
            _ => {
                problems.push(self.wrong_type("a list"));
                None
            }
        }
    }

    /// A string value.
    pub fn str(&self, problems: &mut Problems) -> Option<&'a str> {
        match self.value {
            Value::String(s) => Some(s),
            _ => {
                problems.push(self.wrong_type("a string"));
                None
            }
        }
    }

    /// A boolean value (`true`/`false`; YAML 1.2 has no `yes`/`no`).
    pub fn bool(&self, problems: &mut Problems) -> Option<bool> {
        match self.value {
            Value::Bool(b) => Some(*b),
            _ => {
                problems.push(self.wrong_type("true or false"));
                None
            }
        }
    }

    /// A non-negative integer.
    pub fn u64(&self, problems: &mut Problems) -> Option<u64> {
        match self.value {
            Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
            Value::Number(n) if n.is_i64() => {
                problems.push(self.problem(format!("expected a whole number ≥ 0, found {n}")));
                None
            }
            _ => {
                problems.push(self.wrong_type("a whole number"));
                None
            }
        }
    }

    /// A string parsed by `parse`; its error message is reported at this value.
    /// `expected` names what is wanted when the value is no string at all.
    pub(crate) fn parse_str<T>(
        &self,
        expected: &str,
        problems: &mut Problems,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match self.value {
            Value::String(s) => match parse(s) {
                Ok(v) => Some(v),
                Err(msg) => {
                    problems.push(self.problem(msg));
                    None
                }
            },
            _ => {
                problems.push(self.wrong_type(expected));
                None
            }
        }
    }

    /// One of a few words (`public`, `private`, …), with a did-you-mean when misspelt.
    pub(crate) fn choice<T: Copy>(
        &self,
        choices: &[(&str, T)],
        problems: &mut Problems,
    ) -> Option<T> {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        let expected = format!("one of {}", list_names(&names));
        self.parse_str(&expected, problems, |s| {
            if let Some((_, v)) = choices.iter().find(|(n, _)| *n == s) {
                return Ok(*v);
            }
            Err(match did_you_mean(s, &names) {
                Some(near) => format!("unknown value `{s}`, did you mean `{near}`?"),
                None => format!("unknown value `{s}`; expected {expected}"),
            })
        })
    }
}

/// The known fields present in a mapping (see [`Node::fields`]).
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    node: Node<'a>,
    present: Vec<(String, Node<'a>)>,
}

impl<'a> Fields<'a> {
    /// The field's value, when the key is present.
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.present.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The mapping itself.
    pub fn node(&self) -> &Node<'a> {
        &self.node
    }

    /// A problem about a missing field, at the mapping's own key (or the file start).
    pub fn missing(&self, key: &str) -> Problem {
        let mut problem = self
            .node
            .key_problem(format!("missing required field `{key}`"));
        problem.field = self.node.field();
        problem
    }
}

/// `a`, `b`, `c` for messages.
fn list_names(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The candidate nearest to `input`, if it is close enough to be a typo (edit distance
/// ≤ 2, and less than the input's length so `a` does not suggest `at`).
pub(crate) fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let input_lower = input.to_lowercase();
    let input_len = input.chars().count();
    candidates
        .iter()
        .map(|c| (edit_distance(&input_lower, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= 2 && *d < input_len.max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Damerau–Levenshtein (optimal string alignment) distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Document {
        match Document::parse(text, Some(Path::new("t.yaml"))) {
            Ok(doc) => doc,
            Err(p) => panic!("unexpected problems: {p}"),
        }
    }

    fn node<'a>(doc: &'a Document, path: &[&str]) -> Node<'a> {
        let mut problems = Problems::new();
        let mut node = doc.root();
        for key in path {
            let entries = node.entries(&mut problems).expect("mapping");
            node = entries
                .into_iter()
                .find(|(k, _)| k == key)
                .map(|(_, n)| n)
                .expect("key present");
        }
        node
    }

    #[test]
    fn positions_are_one_based_for_keys_and_values() {
        let doc = parse("a: 1\nwatch:\n  settle: 3s\n  list: [x, y]\n");
        let a = node(&doc, &["a"]);
        assert_eq!(a.key_position(), Pos { line: 1, column: 1 });
        assert_eq!(a.position(), Pos { line: 1, column: 4 });
        let settle = node(&doc, &["watch", "settle"]);
        assert_eq!(settle.key_position(), Pos { line: 3, column: 3 });
        assert_eq!(
            settle.position(),
            Pos {
                line: 3,
                column: 11
            }
        );
        assert_eq!(settle.field(), "watch.settle");
        let list = node(&doc, &["watch", "list"]);
        let mut problems = Problems::new();
        let items = list.items(&mut problems).expect("list");
        assert_eq!(
            items[1].position(),
            Pos {
                line: 4,
                column: 13
            }
        );
        assert_eq!(items[1].field(), "watch.list[1]");
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let doc = parse("名字: 小明\nb: 音乐\n");
        let n = node(&doc, &["名字"]);
        assert_eq!(n.position(), Pos { line: 1, column: 5 });
        let b = node(&doc, &["b"]);
        assert_eq!(b.position(), Pos { line: 2, column: 4 });
    }

    #[test]
    fn complex_keys_and_aliases_do_not_confuse_the_index() {
        let doc = parse("? [a, b]\n: {x: 1}\nbase: &b {k: 1}\nother: *b\nlast: 7\n");
        let last = node(&doc, &["last"]);
        assert_eq!(last.position(), Pos { line: 5, column: 7 });
        // A value reached through an alias falls back to the alias's own position.
        let k = node(&doc, &["other", "k"]);
        assert_eq!(k.position(), Pos { line: 4, column: 8 });
    }

    #[test]
    fn problem_display_has_file_line_column_field() {
        let doc = parse("watch:\n  settle: 3\n");
        let settle = node(&doc, &["watch", "settle"]);
        let p = settle.wrong_type("a duration");
        assert_eq!(
            p.to_string(),
            "t.yaml:2:11: watch.settle: expected a duration, found an integer"
        );
    }

    #[test]
    fn unknown_fields_are_all_reported_with_suggestions() {
        let doc = parse("visiblity: public\ntext: hi\nzzzzzz: 1\n");
        let mut problems = Problems::new();
        let fields = doc
            .root()
            .fields(&["text", "visibility", "account"], &mut problems)
            .expect("mapping");
        assert!(fields.contains("text"));
        assert_eq!(problems.len(), 2);
        assert_eq!(
            problems.0[0].to_string(),
            "t.yaml:1:1: unknown field `visiblity`, did you mean `visibility`?"
        );
        assert_eq!(
            problems.0[1].to_string(),
            "t.yaml:3:1: unknown field `zzzzzz`; expected one of: `text`, `visibility`, `account`"
        );
    }

    #[test]
    fn nested_unknown_field_names_the_mapping() {
        let doc = parse("watch:\n  setle: 3s\n");
        let mut problems = Problems::new();
        let watch = node(&doc, &["watch"]);
        watch.fields(&["settle"], &mut problems);
        assert_eq!(
            problems.to_string(),
            "t.yaml:2:3: watch: unknown field `setle`, did you mean `settle`?"
        );
    }

    #[test]
    fn empty_document_is_an_empty_mapping() {
        for text in ["", "# only a comment\n", "---\n"] {
            let doc = parse(text);
            let mut problems = Problems::new();
            let fields = doc.root().fields(&["a"], &mut problems).expect("mapping");
            assert!(!fields.contains("a"));
            assert!(problems.is_empty());
        }
    }

    #[test]
    fn top_level_non_mapping_is_one_problem() {
        let doc = parse("- a\n- b\n");
        let mut problems = Problems::new();
        assert!(doc.root().fields(&["a"], &mut problems).is_none());
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems.to_string(),
            "t.yaml:1:1: expected a mapping, found a list"
        );
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = Document::parse("a: 1\nb: [1, 2\nc: 3\n", Some(Path::new("t.yaml")))
            .expect_err("syntax error");
        assert_eq!(err.len(), 1);
        let p = &err.0[0];
        assert_eq!(p.file.as_deref(), Some(Path::new("t.yaml")));
        assert!(p.line >= 2, "{p}");
        assert!(p.message.starts_with("invalid YAML: "), "{p}");
        assert!(!p.message.contains(" at line "), "{p}");
    }

    #[test]
    fn tab_indentation_is_a_syntax_error() {
        let err = Document::parse("a:\n\tb: 1\n", None).expect_err("tab");
        assert_eq!(err.0[0].line, 2, "{err}");
    }

    #[test]
    fn tags_are_refused_with_their_position() {
        // Regression (issue 9): `text: !!binary …` was posted as its base64 text.
        for (text, tag) in [
            ("a: 1\ntext: !!binary aGVsbG8=\n", "!!binary"),
            ("text: !foo bar\n", "!foo"),
            ("x: !!map {a: 1}\n", "!!map"),
        ] {
            let Err(problems) = Document::parse(text, None) else {
                panic!("accepted: {text}");
            };
            let p = problems.iter().next().unwrap();
            assert!(p.message.contains(&format!("`{tag}`")), "{text}: {p}");
            assert!(p.message.contains("not accepted"), "{p}");
            assert_eq!(p.line, text.lines().count(), "{text}: {p}");
        }
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = Document::parse("a: 1\nb: 2\na: 3\n", None).expect_err("duplicate");
        assert!(err.to_string().contains("duplicate"), "{err}");
        assert_eq!((err.0[0].line, err.0[0].column), (3, 1), "{err}");
        assert_eq!(err.0[0].message, "invalid YAML: duplicate key `a`");
    }

    #[test]
    fn billion_laughs_is_refused_quickly() {
        let mut text = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for w in names.windows(2) {
            let refs = vec![format!("*{}", w[0]); 9].join(",");
            text.push_str(&format!("{}: &{} [{}]\n", w[1], w[1], refs));
        }
        let started = std::time::Instant::now();
        let err = Document::parse(&text, None).expect_err("alias bomb");
        assert!(err.to_string().contains("alias bomb"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let started = std::time::Instant::now();
        for text in [
            format!("a: {}{}\n", "[".repeat(40_000), "]".repeat(40_000)),
            format!("{}x\n", "- ".repeat(40_000)),
        ] {
            let err = Document::parse(&text, None).expect_err("too deep");
            let text = err.to_string();
            assert!(
                text.contains("levels deep") || text.contains("recursion limit"),
                "{text}"
            );
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn huge_integers_are_a_clear_problem() {
        let err = Document::parse("id: 123456789012345678901234\n", None).expect_err("u128");
        assert!(err.to_string().contains("quoted string"), "{err}");
        // 19 digits still fit in a u64 and stay exact.
        let doc = parse("id: 7012345678901234567\n");
        let id = node(&doc, &["id"]);
        assert_eq!(id.value().as_u64(), Some(7_012_345_678_901_234_567));
    }

    #[test]
    fn type_errors_name_both_types() {
        let doc = parse("a: [1]\nb: yes\nc: -3\nd: 1.5\n");
        let mut problems = Problems::new();
        assert!(node(&doc, &["a"]).str(&mut problems).is_none());
        assert!(node(&doc, &["b"]).bool(&mut problems).is_none());
        assert!(node(&doc, &["c"]).u64(&mut problems).is_none());
        assert!(node(&doc, &["d"]).u64(&mut problems).is_none());
        let text = problems.to_string();
        assert!(
            text.contains("1:4: a: expected a string, found a list"),
            "{text}"
        );
        assert!(
            text.contains("2:4: b: expected true or false, found a string"),
            "{text}"
        );
        assert!(
            text.contains("3:4: c: expected a whole number ≥ 0, found -3"),
            "{text}"
        );
        assert!(
            text.contains("4:4: d: expected a whole number, found a decimal number"),
            "{text}"
        );
    }

    #[test]
    fn choice_suggests_near_values() {
        let doc = parse("v: pubic\nw: zebra\n");
        let mut problems = Problems::new();
        let choices = [("public", 0), ("private", 1), ("friends", 2)];
        assert_eq!(node(&doc, &["v"]).choice(&choices, &mut problems), None);
        assert_eq!(node(&doc, &["w"]).choice(&choices, &mut problems), None);
        let text = problems.to_string();
        assert!(
            text.contains("unknown value `pubic`, did you mean `public`?"),
            "{text}"
        );
        assert!(
            text.contains("unknown value `zebra`; expected one of `public`, `private`, `friends`"),
            "{text}"
        );
    }

    #[test]
    fn did_you_mean_finds_typos_only() {
        let keys = ["visibility", "text", "account", "mentions", "cover_at"];
        assert_eq!(did_you_mean("visiblity", &keys), Some("visibility"));
        assert_eq!(did_you_mean("txet", &keys), Some("text"));
        assert_eq!(did_you_mean("Text", &keys), Some("text"));
        assert_eq!(did_you_mean("mention", &keys), Some("mentions"));
        assert_eq!(did_you_mean("cover", &keys), None);
        assert_eq!(did_you_mean("x", &keys), None);
        assert_eq!(did_you_mean("completely_else", &keys), None);
    }

    #[test]
    fn merge_keys_are_applied() {
        let doc = parse("base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n");
        let mut problems = Problems::new();
        let m = node(&doc, &["m"]);
        let fields = m.fields(&["x", "y"], &mut problems).expect("mapping");
        assert!(fields.contains("x") && fields.contains("y"));
        assert!(problems.is_empty(), "{problems}");
    }
}
