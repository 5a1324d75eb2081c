//! Corefile text → tokens, each with the `file:line:col` it came from.
//!
//! The syntax is Caddy's (CoreDNS's Corefile is a Caddyfile): words separated by white space,
//! `"…"` quoting with `\"` escapes (a quoted word may span lines), `#` starting a comment when
//! it begins a word, and `{$VAR}` / `{%VAR%}` replaced from the environment inside every word.

use std::sync::Arc;

use super::{Pos, SyntaxError, Token};

/// Splits `text` (read from `file`) into tokens. `env` resolves `{$VAR}` placeholders.
pub fn lex(
    file: &Arc<str>,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Token>, SyntaxError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let (mut line, mut col) = (1u32, 1u32);

    loop {
        // Skip white space and comments.
        while let Some(&c) = chars.peek() {
            if c == '\n' {
                chars.next();
                line += 1;
                col = 1;
            } else if c.is_whitespace() {
                chars.next();
                col += 1;
            } else if c == '#' {
                while let Some(&c) = chars.peek() {
                    if c == '\n' {
                        break;
                    }
                    chars.next();
                }
            } else {
                break;
            }
        }
        let Some(&first) = chars.peek() else { break };
        let pos = Pos {
            file: file.clone(),
            line,
            col,
        };
        let mut word = String::new();
        let quoted = first == '"';
        if quoted {
            chars.next();
            col += 1;
            let mut closed = false;
            while let Some(c) = chars.next() {
                col += 1;
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' if matches!(chars.peek(), Some('"') | Some('\\')) => {
                        word.push(chars.next().unwrap_or('\\'));
                        col += 1;
                    }
                    '\n' => {
                        word.push('\n');
                        line += 1;
                        col = 1;
                    }
                    c => word.push(c),
                }
            }
            if !closed {
                return Err(SyntaxError::new(
                    pos,
                    "unterminated quoted string: expected a closing '\"'",
                ));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
                col += 1;
            }
        }
        let text = substitute_env(&word, env);
        tokens.push(Token {
            text,
            pos,
            end_line: line,
            quoted,
        });
    }
    Ok(tokens)
}

/// Replaces `{$NAME}` and `{%NAME%}` with the variable's value; an unset variable becomes the
/// empty string, as in CoreDNS.
pub fn substitute_env(word: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    if !word.contains("{$") && !word.contains("{%") {
        return word.to_string();
    }
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let replaced = if let Some(body) = tail.strip_prefix("{$") {
            body.find('}').map(|end| (&body[..end], 2 + end + 1))
        } else if let Some(body) = tail.strip_prefix("{%") {
            body.find("%}").map(|end| (&body[..end], 2 + end + 2))
        } else {
            None
        };
        match replaced {
            Some((name, consumed)) if is_env_name(name) => {
                out.push_str(&env(name).unwrap_or_default());
                rest = &tail[consumed..];
            }
            _ => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}
