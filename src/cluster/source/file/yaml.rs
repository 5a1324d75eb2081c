//! Where things stand in block-style YAML, found from its lines alone (no parse): where each
//! document and each top-level `items:` entry starts, so that a large List is decoded an item
//! at a time; and where a field's value stands, so that an error points at the value itself.

/// Where a YAML document starts, and where its top-level `items:` entries do.
#[derive(Debug, Default, PartialEq)]
pub(super) struct DocLayout {
    /// The document's first line (1-based).
    pub(super) line: usize,
    /// The first line (1-based) of each entry of its top-level `items:` list, as `kubectl -o
    /// yaml` lays it out; empty when the layout is another.
    pub(super) items: Vec<usize>,
    /// Byte offsets: where the document's text starts and ends (without its `---` line).
    pub(super) start: usize,
    pub(super) end: usize,
    /// Byte offsets of the `items:` line, of each entry's first line, and of where the list
    /// ends; set only where every entry starts `- ` on a line of its own indentation, so that
    /// each entry's text is the lines from its start to the next one's.
    pub(super) list: Option<ListLayout>,
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct ListLayout {
    pub(super) key: usize,
    pub(super) entries: Vec<usize>,
    pub(super) end: usize,
    /// The entries' indentation.
    pub(super) indent: usize,
}

/// The layout of every YAML document in `text`, as far as `---` markers and indentation tell,
/// in one pass over the lines: the work is linear in the file's size however many documents
/// it holds. The flag is false where the markers are not all plain `---` lines (a document
/// that starts on its marker's line, or `...`): then only yaml_serde knows where documents
/// start, and the offsets are not to be cut by.
pub(super) fn yaml_layout(text: &str) -> (Vec<DocLayout>, bool) {
    /// Where the scan of the current document's `items:` list stands.
    enum Items {
        /// No `items:` line yet.
        Before,
        /// Inside the list; the entries' indentation once the first is seen.
        In(Option<usize>),
        /// The list ended.
        After,
    }
    let mut docs: Vec<DocLayout> = Vec::new();
    let mut items = Items::Before;
    let mut seen_content = false;
    let mut plain = true;
    // Whether the current document's entries can be cut out line by line.
    let mut regular = true;
    let mut at = 0;
    let finish = |doc: Option<&mut DocLayout>, items: &Items, regular: bool, end: usize| {
        let Some(doc) = doc else { return };
        doc.end = end;
        if let Some(list) = &mut doc.list {
            if matches!(items, Items::In(_)) {
                list.end = end;
            }
            if !regular || list.entries.is_empty() {
                doc.list = None;
            }
        }
    };
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let start = at;
        at += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let trimmed = line.trim_start();
        if line.starts_with("---") || line.starts_with("...") {
            let bare = line.trim_end() == "---" || line.starts_with("--- #");
            plain &= bare;
            finish(docs.last_mut(), &items, regular, start);
            docs.push(DocLayout {
                line: i + 2,
                start: at,
                ..DocLayout::default()
            });
            seen_content = true;
            items = Items::Before;
            regular = true;
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !seen_content {
            docs.push(DocLayout {
                line: i + 1,
                start: 0,
                ..DocLayout::default()
            });
            seen_content = true;
        }
        let Some(doc) = docs.last_mut() else {
            continue;
        };
        let depth = line.len() - trimmed.len();
        let entry = trimmed.starts_with("- ");
        items = match items {
            Items::Before if line.starts_with("items:") => {
                doc.list = Some(ListLayout {
                    key: start,
                    ..ListLayout::default()
                });
                // `items: []` or a flow list: nothing to cut out.
                regular &= line["items:".len()..].trim().is_empty();
                Items::In(None)
            }
            Items::In(_) if depth == 0 && !trimmed.starts_with('-') => {
                if let Some(list) = &mut doc.list {
                    list.end = start;
                }
                Items::After
            }
            Items::In(None) if entry => {
                doc.items.push(i + 1);
                if let Some(list) = &mut doc.list {
                    list.entries.push(start);
                    list.indent = depth;
                }
                Items::In(Some(depth))
            }
            Items::In(Some(d)) if depth == d && entry => {
                doc.items.push(i + 1);
                if let Some(list) = &mut doc.list {
                    list.entries.push(start);
                }
                Items::In(Some(d))
            }
            Items::In(Some(d)) if depth < d => {
                if let Some(list) = &mut doc.list {
                    list.end = start;
                }
                Items::After
            }
            Items::In(indent) => {
                // An entry not written `- ` on a line of its own (`-` alone, say), or a line
                // left of the entries' content.
                regular &= indent.is_some_and(|d| depth >= d + 2);
                Items::In(indent)
            }
            other => other,
        };
    }
    finish(docs.last_mut(), &items, regular, text.len());
    (docs, plain)
}

/// One step of a field's path: a key, or an index into a list.
#[derive(Debug, PartialEq)]
pub(super) enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `spec.ports[0].port` as steps.
pub(super) fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some((n, after)) = rest.split_once(']') {
            if let Ok(i) = n.parse() {
                out.push(Step::Index(i));
            }
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    out
}

/// A line of block-style YAML as the field search reads it: the columns of its `- ` markers and
/// its key (0-based), if it has one.
pub(super) struct YamlLine<'a> {
    pub(super) dashes: Vec<usize>,
    pub(super) key: Option<(usize, &'a str)>,
    /// Where the key's value starts (0-based), if on this line.
    pub(super) value_col: Option<usize>,
}

impl YamlLine<'_> {
    /// The column of the line's first marker or key.
    fn first(&self) -> Option<usize> {
        self.dashes.first().copied().or(self.key.map(|(c, _)| c))
    }
}

pub(super) fn yaml_line(line: &str) -> YamlLine<'_> {
    let mut col = line.len() - line.trim_start().len();
    let mut rest = line.trim_start();
    let mut dashes = Vec::new();
    while rest == "-" || rest.starts_with("- ") {
        dashes.push(col);
        let after = rest[1..].trim_start();
        col += rest.len() - after.len();
        rest = after;
    }
    let key = rest.split_once(':').and_then(|(k, v)| {
        let plain = !k.is_empty()
            && !k.starts_with(['#', '{', '[', '"', '\''])
            && !k.contains(' ')
            && (v.is_empty() || v.starts_with(' '));
        plain.then_some((k, v))
    });
    let value_col = key.and_then(|(k, v)| {
        let trimmed = v.trim_start();
        (!trimmed.is_empty() && !trimmed.starts_with('#'))
            .then(|| col + k.len() + 1 + (v.len() - trimmed.len()))
    });
    YamlLine {
        dashes,
        key: key.map(|(k, _)| (col, k)),
        value_col,
    }
}

/// Where the value of `field` stands in the object whose block-style YAML starts at line
/// `start` (1-based) of `text`: its line and column (1-based), or as near as the layout lets
/// us tell (the deepest part of the path found; flow-style values are not looked into).
pub(super) fn value_position(
    text: &str,
    start: usize,
    field: &str,
) -> Option<(usize, Option<usize>)> {
    let lines: Vec<YamlLine> = text
        .lines()
        .skip(start.saturating_sub(1))
        .take_while({
            let mut first = true;
            move |l| std::mem::replace(&mut first, false) || !l.starts_with("---")
        })
        .map(yaml_line)
        .collect();
    // Where the search stands: the line (index into `lines`) to look from, and the column
    // the next step's key or entry must be right of (none at the object's top).
    let (mut at, mut parent): (usize, Option<usize>) = (0, None);
    // What was found last: its line, and its value's column there (if on that line).
    let mut found: Option<(usize, Option<usize>)> = None;
    // The first key of the object may sit after the `- ` of its List entry.
    let deeper = |col: usize, parent: Option<usize>| parent.is_none_or(|p| col > p);
    for step in steps(field) {
        match step {
            Step::Key(k) => {
                // Within the scope of what was found last: until a line as far left as it.
                let hit = (at..lines.len())
                    .take_while(|&i| lines[i].first().is_none_or(|c| deeper(c, parent)) || i == at)
                    .find(|&i| {
                        lines[i]
                            .key
                            .is_some_and(|(c, name)| name == k && deeper(c, parent))
                    });
                let Some(i) = hit else { break };
                let (col, _) = lines[i].key?;
                parent = Some(col);
                at = i;
                found = Some((i, lines[i].value_col));
                // A nested key starts below; an index may start below too.
                at += 1;
            }
            Step::Index(n) => {
                // Entries of the list under the key found last: `- ` at or right of its column.
                let p = parent.unwrap_or(0);
                let mut entries = (at..lines.len())
                    .take_while(|&i| {
                        let l = &lines[i];
                        l.first()
                            .is_none_or(|c| c > p || (c == p && !l.dashes.is_empty()))
                    })
                    .filter_map(|i| {
                        lines[i]
                            .dashes
                            .first()
                            .filter(|&&c| c >= p)
                            .map(|&c| (i, c))
                    });
                let Some((i, col)) = entries.nth(n) else {
                    break;
                };
                parent = Some(col);
                at = i;
                found = Some((i, lines[i].key.map(|(c, _)| c)));
            }
        }
    }
    let (i, col) = found?;
    Some((start + i, col.map(|c| c + 1)))
}
