//! A bounded on-disk queue of lines: what the Elasticsearch sink holds while the store is
//! slow or down, so that alerts survive an outage of the store, and a restart of the sensor,
//! up to a size bound, past which new lines are refused (and the caller counts the drop).
//!
//! Layout of the directory: segment files `00000000000000000001.spool`, … holding
//! newline-terminated lines, appended to the newest; a `cursor` file (`<segment> <offset>`)
//! saying how far the oldest segment has been delivered, replaced atomically (write, then
//! rename) at each [`Spool::commit`]. Fully delivered segments are deleted.
//!
//! Durability: lines are written to the file at once (a crash of the sensor loses none);
//! segments are fsynced when they fill up and at [`Spool::close`], so a power loss can take
//! at most the current segment's unsynced tail. A line torn by a crash is cut off when the
//! spool is opened again. Delivery is at least once: a batch sent but not committed before a
//! crash is sent again (the sink gives each document a stable id, so the store keeps one).
//!
//! The bound is on the bytes not yet delivered ([`Spool::pending_bytes`]).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Where delivery has got to: a byte offset in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// Lines read by [`Spool::peek`], and the position just after the last of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub lines: Vec<Vec<u8>>,
    pub end: Position,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    len: u64,
    /// Lines in it, from its start.
    lines: u64,
}

/// `append` refused a line: the spool holds its bound already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// The spool. Not thread-safe: the sink keeps it behind a mutex.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    head: Option<File>,
    cursor: Position,
    /// Lines of the first segment before the cursor.
    cursor_lines: u64,
    pending_bytes: u64,
    pending_lines: u64,
}

const SUFFIX: &str = ".spool";

impl Spool {
    /// Open (creating) the spool in `dir`, recovering what an earlier run left there.
    /// `max_bytes` bounds the undelivered bytes; segments are at most `segment_bytes`
    /// (or one line).
    pub fn open(dir: &Path, max_bytes: u64, segment_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let mut ids: Vec<u64> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name.strip_suffix(SUFFIX).and_then(|n| n.parse().ok()) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.max(1),
            segment_bytes: segment_bytes.max(1),
            segments: VecDeque::new(),
            head: None,
            cursor: Position::default(),
            cursor_lines: 0,
            pending_bytes: 0,
            pending_lines: 0,
        };
        let saved = spool.read_cursor();
        for id in ids {
            let path = spool.path(id);
            let mut data = Vec::new();
            File::open(&path)?.read_to_end(&mut data)?;
            // Cut a line torn by a crash (only the newest segment can have one).
            let keep = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            if keep < data.len() {
                OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(keep as u64)?;
                data.truncate(keep);
            }
            let lines = data.iter().filter(|&&b| b == b'\n').count() as u64;
            spool.segments.push_back(Segment {
                id,
                len: keep as u64,
                lines,
            });
        }
        // The cursor must point into the first segment; anything older was delivered.
        match (saved, spool.segments.front()) {
            (Some(c), Some(first)) if c.segment == first.id && c.offset <= first.len => {
                spool.cursor = c;
            }
            (_, Some(first)) => {
                spool.cursor = Position {
                    segment: first.id,
                    offset: 0,
                };
            }
            (Some(c), None) => spool.cursor = c,
            (None, None) => {}
        }
        if let Some(first) = spool.segments.front() {
            let mut f = File::open(spool.path(first.id))?;
            let mut buf = vec![0u8; spool.cursor.offset as usize];
            f.read_exact(&mut buf)?;
            spool.cursor_lines = buf.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        spool.recount();
        Ok(spool)
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:020}{SUFFIX}"))
    }

    fn read_cursor(&self) -> Option<Position> {
        let text = fs::read_to_string(self.dir.join("cursor")).ok()?;
        let (s, o) = text.trim().split_once(' ')?;
        Some(Position {
            segment: s.parse().ok()?,
            offset: o.parse().ok()?,
        })
    }

    fn write_cursor(&self) -> io::Result<()> {
        let tmp = self.dir.join("cursor.tmp");
        fs::write(
            &tmp,
            format!("{} {}\n", self.cursor.segment, self.cursor.offset),
        )?;
        fs::rename(tmp, self.dir.join("cursor"))
    }

    fn recount(&mut self) {
        let bytes: u64 = self.segments.iter().map(|s| s.len).sum();
        let lines: u64 = self.segments.iter().map(|s| s.lines).sum();
        self.pending_bytes = bytes.saturating_sub(self.cursor.offset);
        self.pending_lines = lines.saturating_sub(self.cursor_lines);
    }

    /// Undelivered bytes.
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes
    }

    /// Undelivered lines.
    pub fn pending_lines(&self) -> u64 {
        self.pending_lines
    }

    /// The bound on [`Spool::pending_bytes`].
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Append one line (without its newline, which must not occur in it). `Err(Full)` when
    /// it would take the spool past its bound; an I/O error is returned as such.
    pub fn append(&mut self, line: &[u8]) -> io::Result<Result<(), Full>> {
        let len = line.len() as u64 + 1;
        if self.pending_bytes + len > self.max_bytes {
            return Ok(Err(Full));
        }
        let need_new = match self.segments.back() {
            None => true,
            Some(s) => s.len > 0 && s.len + len > self.segment_bytes,
        };
        if need_new {
            if let Some(old) = self.head.take() {
                let _ = old.sync_data();
            }
            let id = self
                .segments
                .back()
                .map_or(self.cursor.segment.max(1), |s| s.id + 1);
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path(id))?;
            self.segments.push_back(Segment {
                id,
                len: 0,
                lines: 0,
            });
            if self.segments.len() == 1 {
                self.cursor = Position {
                    segment: id,
                    offset: 0,
                };
                self.cursor_lines = 0;
            }
            self.head = Some(f);
        }
        if self.head.is_none() {
            let id = self.segments.back().map_or(1, |s| s.id);
            self.head = Some(OpenOptions::new().append(true).open(self.path(id))?);
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        let Some(head) = self.head.as_mut() else {
            return Err(io::ErrorKind::NotFound.into());
        };
        if let Err(e) = head.write_all(&buf) {
            // The file may hold part of the line: reopen (and cut it) next time.
            self.head = None;
            return Err(e);
        }
        if let Some(s) = self.segments.back_mut() {
            s.len += len;
            s.lines += 1;
        }
        self.pending_bytes += len;
        self.pending_lines += 1;
        Ok(Ok(()))
    }

    /// Read, without consuming, up to `max_lines` lines and about `max_bytes` (at least one
    /// line) from the delivery position.
    pub fn peek(&mut self, max_bytes: u64, max_lines: usize) -> io::Result<Batch> {
        let mut batch = Batch {
            lines: Vec::new(),
            end: self.cursor,
        };
        let mut bytes = 0u64;
        let mut pos = self.cursor;
        for seg in &self.segments {
            if seg.id < pos.segment {
                continue;
            }
            let start = if seg.id == pos.segment { pos.offset } else { 0 };
            if start >= seg.len {
                continue;
            }
            let mut f = File::open(self.path(seg.id))?;
            f.seek(SeekFrom::Start(start))?;
            let want = (seg.len - start).min(max_bytes.saturating_sub(bytes).max(1) + 64 * 1024);
            let mut data = vec![0u8; want as usize];
            let n = read_full(&mut f, &mut data)?;
            data.truncate(n);
            let mut off = 0usize;
            while let Some(nl) = data[off..].iter().position(|&b| b == b'\n') {
                let line = &data[off..off + nl];
                let len = nl as u64 + 1;
                if !batch.lines.is_empty()
                    && (bytes + len > max_bytes || batch.lines.len() >= max_lines)
                {
                    return Ok(batch);
                }
                batch.lines.push(line.to_vec());
                bytes += len;
                off += nl + 1;
                pos = Position {
                    segment: seg.id,
                    offset: start + off as u64,
                };
                batch.end = pos;
                if batch.lines.len() >= max_lines || bytes >= max_bytes {
                    return Ok(batch);
                }
            }
            if start + (off as u64) < seg.len {
                // The read stopped inside this segment: the batch is as full as it gets.
                return Ok(batch);
            }
        }
        Ok(batch)
    }

    /// Mark everything before `end` delivered: delete finished segments, save the cursor.
    pub fn commit(&mut self, end: Position) -> io::Result<()> {
        if end <= self.cursor {
            return Ok(());
        }
        while let Some(first) = self.segments.front() {
            let is_head = self.segments.len() == 1;
            if first.id < end.segment
                || (first.id == end.segment && end.offset >= first.len && !is_head)
            {
                let id = first.id;
                self.segments.pop_front();
                fs::remove_file(self.path(id)).or_else(|e| {
                    if e.kind() == io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
                self.cursor = Position {
                    segment: self.segments.front().map_or(end.segment, |s| s.id),
                    offset: 0,
                };
                self.cursor_lines = 0;
            } else {
                break;
            }
        }
        if let Some(first) = self.segments.front()
            && first.id == end.segment
        {
            // Count the lines between the old cursor and `end`.
            let from = if self.cursor.segment == end.segment {
                self.cursor.offset
            } else {
                0
            };
            let mut f = File::open(self.path(first.id))?;
            f.seek(SeekFrom::Start(from))?;
            let mut buf = vec![0u8; end.offset.saturating_sub(from) as usize];
            f.read_exact(&mut buf)?;
            if self.cursor.segment != end.segment {
                self.cursor_lines = 0;
            }
            self.cursor_lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
            self.cursor = end;
        }
        self.recount();
        self.write_cursor()
    }

    /// Sync the newest segment (at shutdown).
    pub fn close(&mut self) -> io::Result<()> {
        match self.head.take() {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: usize) -> Vec<u8> {
        format!("line-{i:04}").into_bytes() // 9 bytes + newline
    }

    fn drain(s: &mut Spool) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        loop {
            let b = s.peek(35, 100).unwrap();
            if b.lines.is_empty() {
                return all;
            }
            all.extend(b.lines.clone());
            s.commit(b.end).unwrap();
        }
    }

    #[test]
    fn lines_come_out_in_order_across_segments_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1000, 25).unwrap();
        for i in 0..7 {
            s.append(&line(i)).unwrap().unwrap();
        }
        assert_eq!((s.pending_lines(), s.pending_bytes()), (7, 70));
        let b = s.peek(25, 100).unwrap();
        assert_eq!(b.lines, vec![line(0), line(1)]);
        // Peeking again without commit gives the same lines.
        assert_eq!(s.peek(25, 100).unwrap(), b);
        s.commit(b.end).unwrap();
        assert_eq!(s.pending_lines(), 5);
        let b = s.peek(1000, 2).unwrap();
        assert_eq!(b.lines, vec![line(2), line(3)]);
        s.commit(b.end).unwrap();
        s.close().unwrap();
        drop(s);
        // Reopen: the cursor survives, so do the lines after it.
        let mut s = Spool::open(dir.path(), 1000, 25).unwrap();
        assert_eq!(s.pending_lines(), 3);
        s.append(&line(7)).unwrap().unwrap();
        assert_eq!(drain(&mut s), (4..8).map(line).collect::<Vec<_>>());
        assert_eq!((s.pending_lines(), s.pending_bytes()), (0, 0));
        // Only the newest segment is left on disk.
        let files = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(SUFFIX)
            })
            .count();
        assert!(files <= 1, "{files} segments left");
        s.append(&line(8)).unwrap().unwrap();
        assert_eq!(drain(&mut s), vec![line(8)]);
    }

    #[test]
    fn the_bound_refuses_and_frees() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 50, 20).unwrap();
        for i in 0..5 {
            s.append(&line(i)).unwrap().unwrap();
        }
        assert_eq!(s.append(&line(5)).unwrap(), Err(Full));
        let b = s.peek(20, 100).unwrap();
        s.commit(b.end).unwrap();
        s.append(&line(5)).unwrap().unwrap();
        s.append(&line(6)).unwrap().unwrap();
        assert_eq!(s.pending_bytes(), 50);
        assert_eq!(s.append(&line(7)).unwrap(), Err(Full));
        assert_eq!(drain(&mut s), (2..7).map(line).collect::<Vec<_>>());
    }

    #[test]
    fn a_torn_line_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1000, 1000).unwrap();
        s.append(&line(0)).unwrap().unwrap();
        s.append(&line(1)).unwrap().unwrap();
        drop(s);
        let seg = dir.path().join(format!("{:020}{SUFFIX}", 1));
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"line-00").unwrap();
        let mut s = Spool::open(dir.path(), 1000, 1000).unwrap();
        assert_eq!(s.pending_lines(), 2);
        s.append(&line(2)).unwrap().unwrap();
        assert_eq!(drain(&mut s), vec![line(0), line(1), line(2)]);
        // A long line alone still goes out.
        let long = vec![b'x'; 200];
        s.append(&long).unwrap().unwrap();
        assert_eq!(s.peek(10, 10).unwrap().lines, vec![long]);
    }
}
