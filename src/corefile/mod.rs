//! The Corefile as text: tokens, snippets, imports and blocks, and the words every directive's
//! parser reads it with: [`args`] (arguments and properties with good messages), [`keys`]
//! (server block keys and the zones a directive names) and [`error`] (an error at
//! `file:line:col`). This module knows nothing about plugins; each plugin folder's `config.rs`
//! types its own directive with these, and `crate::config` assembles the typed Corefile through
//! the registry.
//!
//! ```text
//! (snippet) { … }                 # defines a snippet, used with `import snippet`
//! .:53 cluster.local:1053 {       # a server block: keys, then directives
//!     kubernetes cluster.local {  # a directive with arguments and a block of properties
//!         pods insecure
//!     }
//!     import custom/*.override    # files relative to this file's folder; no match is fine
//! }
//! ```

pub mod args;
pub mod error;
pub mod keys;
mod lexer;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use lexer::substitute_env;

/// Where a token starts: `file:line:col`, 1-based.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0 stands for the file as a whole (it could not be read, say).
        if self.line == 0 {
            return write!(f, "{}", self.file);
        }
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// One word of a Corefile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub pos: Pos,
    /// The line the token ends on (a quoted word may span lines).
    pub end_line: u32,
    pub quoted: bool,
}

impl Token {
    fn is(&self, s: &str) -> bool {
        !self.quoted && self.text == s
    }

    /// Whether `next` continues the line this token is on.
    fn same_line(&self, next: &Token) -> bool {
        self.pos.file == next.pos.file && self.end_line == next.pos.line
    }
}

/// A Corefile syntax error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {msg}")]
pub struct SyntaxError {
    pub pos: Pos,
    pub msg: String,
}

impl SyntaxError {
    pub fn new(pos: Pos, msg: impl Into<String>) -> Self {
        Self {
            pos,
            msg: msg.into(),
        }
    }
}

/// A server block: `keys { directives }`.
#[derive(Clone, Debug)]
pub struct ServerBlock {
    pub keys: Vec<Token>,
    pub directives: Vec<Directive>,
}

/// A directive or a property inside a directive's block: a name, the arguments on its line,
/// and an optional `{ … }` block of properties.
#[derive(Clone, Debug)]
pub struct Directive {
    pub name: Token,
    pub args: Vec<Token>,
    pub block: Option<Vec<Directive>>,
}

/// How deep imports and snippets may nest before we call it a cycle.
const MAX_IMPORT_DEPTH: usize = 16;

/// A Corefile as read: its blocks, and the text of every file that went into it (the Corefile
/// and what it imports), so that a change to any of them can be noticed.
pub struct Parsed {
    pub blocks: Result<Vec<ServerBlock>, SyntaxError>,
    pub sources: Vec<(Arc<str>, String)>,
}

/// Reads and parses the Corefile at `path`, following imports.
pub fn parse_file(path: &Path) -> Result<Vec<ServerBlock>, SyntaxError> {
    read_file(path).blocks
}

/// Like [`parse_file`], keeping the text of every file read.
pub fn read_file(path: &Path) -> Parsed {
    let name: Arc<str> = Arc::from(path.display().to_string());
    match std::fs::read_to_string(path) {
        Ok(text) => read_str(&name, &text, &|k| std::env::var(k).ok()),
        Err(e) => Parsed {
            blocks: Err(SyntaxError::new(
                Pos {
                    file: name,
                    line: 0,
                    col: 0,
                },
                format!("cannot read the Corefile: {e}"),
            )),
            sources: Vec::new(),
        },
    }
}

/// Parses Corefile `text` that was read from `file`; imports are resolved relative to the folder
/// of `file`.
pub fn parse_str(
    file: &Arc<str>,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ServerBlock>, SyntaxError> {
    read_str(file, text, env).blocks
}

fn read_str(file: &Arc<str>, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Parsed {
    let mut expander = Expander {
        snippets: HashMap::new(),
        env,
        sources: vec![(file.clone(), text.to_string())],
    };
    let blocks = lexer::lex(file, text, env)
        .and_then(|tokens| expander.expand(tokens, 0))
        .and_then(|tokens| Parser { tokens, i: 0 }.server_blocks());
    Parsed {
        blocks,
        sources: expander.sources,
    }
}

struct Expander<'e> {
    snippets: HashMap<String, Vec<Token>>,
    env: &'e dyn Fn(&str) -> Option<String>,
    sources: Vec<(Arc<str>, String)>,
}

impl Expander<'_> {
    /// Removes snippet definitions and replaces `import` lines with what they import.
    fn expand(&mut self, tokens: Vec<Token>, depth: usize) -> Result<Vec<Token>, SyntaxError> {
        let mut out = Vec::with_capacity(tokens.len());
        let mut depth_braces = 0usize;
        let mut i = 0;
        while i < tokens.len() {
            let t = &tokens[i];
            let starts_line = i == 0 || !tokens[i - 1].same_line(t);
            if depth_braces == 0 && starts_line && is_snippet_name(t) {
                let open = tokens.get(i + 1).filter(|n| n.is("{") && t.same_line(n));
                if open.is_none() {
                    return Err(SyntaxError::new(
                        t.pos.clone(),
                        format!("snippet {}: expected '{{' on the same line", t.text),
                    ));
                }
                let end = matching_brace(&tokens, i + 1)?;
                let name = t.text[1..t.text.len() - 1].to_string();
                self.snippets.insert(name, tokens[i + 2..end].to_vec());
                i = end + 1;
                continue;
            }
            if starts_line && t.is("import") {
                let args: Vec<&Token> = tokens[i + 1..]
                    .iter()
                    .scan(t, |prev, n| {
                        let keep = prev.same_line(n);
                        *prev = n;
                        keep.then_some(n)
                    })
                    .collect();
                let Some(arg) = args.first() else {
                    return Err(SyntaxError::new(
                        t.pos.clone(),
                        "import: expected a snippet name or a file pattern",
                    ));
                };
                if args.len() > 1 {
                    return Err(SyntaxError::new(
                        args[1].pos.clone(),
                        "import: expected one argument (a snippet name or a file pattern)",
                    ));
                }
                if depth >= MAX_IMPORT_DEPTH {
                    return Err(SyntaxError::new(
                        t.pos.clone(),
                        format!(
                            "import {}: imports nest deeper than {MAX_IMPORT_DEPTH} levels (an import cycle?)",
                            arg.text
                        ),
                    ));
                }
                let imported = self.import(arg)?;
                out.extend(self.expand(imported, depth + 1)?);
                i += 1 + args.len();
                continue;
            }
            if t.is("{") {
                depth_braces += 1;
            } else if t.is("}") {
                depth_braces = depth_braces.saturating_sub(1);
            }
            out.push(t.clone());
            i += 1;
        }
        Ok(out)
    }

    /// The tokens an `import ARG` line stands for: a snippet, or the files matching a glob.
    fn import(&mut self, arg: &Token) -> Result<Vec<Token>, SyntaxError> {
        if let Some(snippet) = self.snippets.get(&arg.text) {
            return Ok(snippet.clone());
        }
        let base = Path::new(&*arg.pos.file)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let pattern = if Path::new(&arg.text).is_absolute() {
            PathBuf::from(&arg.text)
        } else {
            base.join(&arg.text)
        };
        let pattern_text = pattern.to_string_lossy().to_string();
        let paths = glob::glob(&pattern_text).map_err(|e| {
            SyntaxError::new(
                arg.pos.clone(),
                format!("import {}: bad file pattern: {e}", arg.text),
            )
        })?;
        let mut files: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
        files.sort();
        if files.is_empty() && !arg.text.contains(['*', '?', '[']) {
            return Err(SyntaxError::new(
                arg.pos.clone(),
                format!(
                    "import {}: no snippet of that name and no such file ({pattern_text})",
                    arg.text
                ),
            ));
        }
        let mut tokens = Vec::new();
        for path in files.into_iter().filter(|p| p.is_file()) {
            let name: Arc<str> = Arc::from(path.display().to_string());
            let text = std::fs::read_to_string(&path).map_err(|e| {
                SyntaxError::new(
                    arg.pos.clone(),
                    format!("import {}: cannot read {}: {e}", arg.text, path.display()),
                )
            })?;
            tokens.extend(lexer::lex(&name, &text, self.env)?);
            self.sources.push((name, text));
        }
        Ok(tokens)
    }
}

fn is_snippet_name(t: &Token) -> bool {
    !t.quoted && t.text.len() > 2 && t.text.starts_with('(') && t.text.ends_with(')')
}

/// Index of the `}` that closes the `{` at `open`.
fn matching_brace(tokens: &[Token], open: usize) -> Result<usize, SyntaxError> {
    let mut depth = 0usize;
    for (j, t) in tokens.iter().enumerate().skip(open) {
        if t.is("{") {
            depth += 1;
        } else if t.is("}") {
            depth -= 1;
            if depth == 0 {
                return Ok(j);
            }
        }
    }
    Err(SyntaxError::new(
        tokens[open].pos.clone(),
        "this '{' is never closed: expected '}'",
    ))
}

struct Parser {
    tokens: Vec<Token>,
    i: usize,
}

impl Parser {
    fn server_blocks(mut self) -> Result<Vec<ServerBlock>, SyntaxError> {
        let mut blocks = Vec::new();
        while self.i < self.tokens.len() {
            blocks.push(self.server_block()?);
        }
        Ok(blocks)
    }

    fn server_block(&mut self) -> Result<ServerBlock, SyntaxError> {
        let mut keys = Vec::new();
        let first = self.tokens[self.i].clone();
        loop {
            let Some(t) = self.tokens.get(self.i).cloned() else {
                return Err(SyntaxError::new(
                    first.pos,
                    format!(
                        "server block '{}' has no body: expected '{{' after its keys",
                        first.text
                    ),
                ));
            };
            self.i += 1;
            if keys.is_empty() && (t.is("{") || t.is("{}")) {
                return Err(SyntaxError::new(
                    t.pos,
                    "expected server block keys (such as '.:53') before '{'",
                ));
            }
            if t.is("{") {
                break;
            }
            if t.is("}") {
                return Err(SyntaxError::new(
                    t.pos,
                    "unexpected '}': no block is open here",
                ));
            }
            if t.is("{}") {
                return Ok(ServerBlock {
                    keys: split_keys(keys),
                    directives: Vec::new(),
                });
            }
            keys.push(t);
        }
        let directives = self.block_body(&first)?;
        Ok(ServerBlock {
            keys: split_keys(keys),
            directives,
        })
    }

    /// Directives up to and including the closing `}` of a block opened by `opener`.
    fn block_body(&mut self, opener: &Token) -> Result<Vec<Directive>, SyntaxError> {
        let mut directives = Vec::new();
        loop {
            let Some(t) = self.tokens.get(self.i).cloned() else {
                return Err(SyntaxError::new(
                    opener.pos.clone(),
                    format!(
                        "the block opened by '{}' is never closed: expected '}}'",
                        opener.text
                    ),
                ));
            };
            self.i += 1;
            if t.is("}") {
                return Ok(directives);
            }
            if t.is("{") || t.is("{}") {
                return Err(SyntaxError::new(
                    t.pos,
                    "unexpected '{': a block must follow a directive on the same line",
                ));
            }
            let mut args = Vec::new();
            let mut prev = t.clone();
            let mut block = None;
            while let Some(n) = self.tokens.get(self.i).cloned() {
                if !prev.same_line(&n) {
                    break;
                }
                self.i += 1;
                if n.is("{") {
                    block = Some(self.block_body(&t)?);
                    break;
                }
                if n.is("{}") {
                    block = Some(Vec::new());
                    break;
                }
                if n.is("}") {
                    // `name arg }` closes the enclosing block on the directive's own line.
                    self.i -= 1;
                    break;
                }
                prev = n.clone();
                args.push(n);
            }
            directives.push(Directive {
                name: t,
                args,
                block,
            });
        }
    }
}

/// Server block keys may be separated by spaces or commas: `a.:53, b.:53 {`.
fn split_keys(raw: Vec<Token>) -> Vec<Token> {
    let mut keys = Vec::new();
    for t in raw {
        let mut col = t.pos.col;
        for part in t.text.split(',') {
            if !part.is_empty() {
                keys.push(Token {
                    text: part.to_string(),
                    pos: Pos {
                        col,
                        ..t.pos.clone()
                    },
                    end_line: t.end_line,
                    quoted: t.quoted,
                });
            }
            col += part.len() as u32 + 1;
        }
    }
    keys
}
