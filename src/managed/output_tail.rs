//! A managed gateway's own output (`run/output.log`, which its keeper writes and rotates) in
//! the central log tail: every round each file is read from where the last round stopped, whole
//! lines only, at most [`MAX_BYTES`] a round, and each line becomes a `log` event with source
//! `output` (`GET /api/logs`, its stream, the console). A file rotated (another inode) or cut
//! short is read again from its start; the first look at a file reads only its tail. The
//! gateway's file log still comes through `logs.tail`; this is what it prints (a start-up
//! failure before its logger runs, a Node.js crash) — lines only the process's owner can see.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Bytes read from one gateway's output per round, at most (the rest comes next round).
pub const MAX_BYTES: u64 = 64 * 1024;

/// Where one gateway's output was read up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    inode: u64,
    offset: u64,
}

/// One gateway's output file and how far it was read.
#[derive(Debug, Clone)]
pub struct Output {
    pub path: PathBuf,
    pub cursor: Option<Cursor>,
}

impl Output {
    pub fn new(path: PathBuf) -> Output {
        Output { path, cursor: None }
    }

    /// The whole lines written since the last read (none when the file is not there).
    pub fn read_new(&mut self) -> Vec<String> {
        let (lines, cursor) = read_new(&self.path, self.cursor, MAX_BYTES);
        self.cursor = cursor.or(self.cursor);
        lines
    }
}

/// Reads whole lines from `path` after `cursor`, at most `max` bytes (a line longer than that
/// is cut into pieces of `max`); the cursor to read from next.
pub fn read_new(path: &Path, cursor: Option<Cursor>, max: u64) -> (Vec<String>, Option<Cursor>) {
    let Ok(mut file) = File::open(path) else {
        return (Vec::new(), None);
    };
    let Ok(meta) = file.metadata() else {
        return (Vec::new(), None);
    };
    let (inode, len) = (meta.ino(), meta.len());
    let (start, first_look) = match cursor {
        Some(c) if c.inode == inode && c.offset <= len => (c.offset, false),
        // Rotated or rewritten: from the top of the new file.
        Some(_) => (0, false),
        None => (len.saturating_sub(max), len > max),
    };
    let mut buf = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.take(max).read_to_end(&mut buf).is_err() {
        return (Vec::new(), cursor);
    }
    let consumed = match buf.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        // One line longer than a round's bytes: taken as it is.
        None if buf.len() as u64 >= max => buf.len(),
        None => 0,
    };
    let mut text = &buf[..consumed];
    if first_look {
        // The first look starts mid-file: the part line before the first newline is dropped.
        let skip = text
            .iter()
            .position(|b| *b == b'\n')
            .map_or(text.len(), |i| i + 1);
        text = &text[skip..];
    }
    let lines = String::from_utf8_lossy(text)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    (
        lines,
        Some(Cursor {
            inode,
            offset: start + consumed as u64,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    #[test]
    fn whole_lines_are_read_once_and_a_part_line_waits_for_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        let mut out = Output::new(path.clone());
        assert!(out.read_new().is_empty(), "no file yet");
        append(&path, "one\ntwo\nthr");
        // The first look at a small file reads all of it.
        assert_eq!(out.read_new(), ["one", "two"]);
        assert!(out.read_new().is_empty());
        append(&path, "ee\n\nfour\n");
        assert_eq!(out.read_new(), ["three", "four"]);
    }

    #[test]
    fn a_rotated_file_is_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        let mut out = Output::new(path.clone());
        append(&path, "old 1\nold 2\n");
        assert_eq!(out.read_new().len(), 2);
        std::fs::rename(&path, dir.path().join("output.log.1")).unwrap();
        append(&path, "new\n");
        assert_eq!(out.read_new(), ["new"]);
        // Cut short in place (a new keeper truncating): from the top again.
        std::fs::write(&path, "").unwrap();
        append(&path, "x\n");
        assert_eq!(out.read_new(), ["x"]);
    }

    #[test]
    fn a_round_reads_a_bounded_number_of_bytes_and_the_first_look_only_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        let long: String = (0..100).map(|i| format!("line {i:03}\n")).collect(); // 9 bytes each
        append(&path, &long);
        let (lines, cursor) = read_new(&path, None, 45);
        // The last 45 bytes start mid-line: that part is dropped.
        assert_eq!(lines, ["line 096", "line 097", "line 098", "line 099"]);
        append(&path, &"y".repeat(100));
        append(&path, "\n");
        let (lines, cursor) = read_new(&path, cursor, 45);
        assert_eq!(lines, ["y".repeat(45)], "a longer line is cut at the bound");
        let (lines, _) = read_new(&path, cursor, 45);
        assert_eq!(lines, ["y".repeat(45)]);
    }
}
