//! Elastic tabstops as implemented by Go's `text/tabwriter`, in the variant
//! docker-cli vendors (`cli/command/formatter/tabwriter`), which measures
//! cells with `go-runewidth` so that East Asian wide characters count as two
//! columns.
//!
//! The input is made of cells terminated by `\t` (or `\v`); `\n` and `\f`
//! end lines. Tab-terminated cells in contiguous lines form a column whose
//! width is the widest cell plus `padding` (at least `minwidth`). Text after
//! the last tab of a line is not part of any column and is never padded.
//! A line without any tab ends all columns, as does `\f`.

use unicode_width::UnicodeWidthStr;

/// Display width of a cell, as `runewidth.StringWidth`: control characters
/// take no room, wide characters two columns.
pub(crate) fn text_width(s: &str) -> usize {
    if s.chars().any(char::is_control) {
        let cleaned: String = s.chars().filter(|c| !c.is_control()).collect();
        return cleaned.width();
    }
    s.width()
}

#[derive(Clone, Copy, Default, Debug)]
struct Cell {
    size: usize,
    width: usize,
    htab: bool,
}

/// An in-memory tab writer: feed text with [`TabWriter::write`], collect the
/// aligned output with [`TabWriter::flush`].
#[derive(Debug)]
pub struct TabWriter {
    minwidth: usize,
    tabwidth: usize,
    padding: usize,
    padchar: char,
    buf: String,
    pos: usize,
    cell: Cell,
    lines: Vec<Vec<Cell>>,
    widths: Vec<usize>,
    out: String,
}

impl TabWriter {
    /// Same parameters as Go's `tabwriter.NewWriter` with no flags.
    /// Docker uses `NewWriter(out, 10, 1, 3, ' ', 0)`, see [`TabWriter::docker`].
    pub fn new(minwidth: usize, tabwidth: usize, padding: usize, padchar: char) -> TabWriter {
        TabWriter {
            minwidth,
            tabwidth,
            padding,
            padchar,
            buf: String::new(),
            pos: 0,
            cell: Cell::default(),
            lines: vec![Vec::new()],
            widths: Vec::new(),
            out: String::new(),
        }
    }

    /// The writer docker-cli's formatter uses for tables.
    pub fn docker() -> TabWriter {
        TabWriter::new(10, 1, 3, ' ')
    }

    fn append(&mut self, text: &str) {
        self.buf.push_str(text);
        self.cell.size += text.len();
    }

    fn update_width(&mut self) {
        self.cell.width += text_width(&self.buf[self.pos..]);
        self.pos = self.buf.len();
    }

    fn terminate_cell(&mut self, htab: bool) -> usize {
        self.cell.htab = htab;
        let cell = std::mem::take(&mut self.cell);
        match self.lines.last_mut() {
            Some(line) => {
                line.push(cell);
                line.len()
            }
            None => {
                self.lines.push(vec![cell]);
                1
            }
        }
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.cell = Cell::default();
        self.lines.clear();
        self.lines.push(Vec::new());
        self.widths.clear();
    }

    /// Adds text; output is produced when columns are complete.
    pub fn write(&mut self, text: &str) {
        let mut n = 0;
        for (i, ch) in text.char_indices() {
            if !matches!(ch, '\t' | '\x0b' | '\n' | '\x0c') {
                continue;
            }
            self.append(&text[n..i]);
            self.update_width();
            n = i + 1;
            let ncells = self.terminate_cell(ch == '\t');
            if ch == '\n' || ch == '\x0c' {
                self.lines.push(Vec::new());
                if ch == '\x0c' || ncells == 1 {
                    // A line with a single cell does not affect the
                    // formatting of later lines: everything so far can be
                    // written out.
                    self.flush_buffered();
                }
            }
        }
        self.append(&text[n..]);
    }

    fn flush_buffered(&mut self) {
        if self.cell.size > 0 {
            self.terminate_cell(false);
        }
        let n = self.lines.len();
        self.format(0, 0, n);
        self.reset();
    }

    /// Formats everything written so far and returns the output produced
    /// since the last call.
    pub fn flush(&mut self) -> String {
        self.flush_buffered();
        std::mem::take(&mut self.out)
    }

    fn write_padding(&mut self, textw: usize, cellw: usize, use_tabs: bool) {
        if self.padchar == '\t' || use_tabs {
            if self.tabwidth == 0 {
                return;
            }
            let cellw = cellw.div_ceil(self.tabwidth) * self.tabwidth;
            let n = cellw.saturating_sub(textw);
            let count = n.div_ceil(self.tabwidth);
            self.out.extend(std::iter::repeat_n('\t', count));
            return;
        }
        let count = cellw.saturating_sub(textw);
        self.out.extend(std::iter::repeat_n(self.padchar, count));
    }

    fn write_lines(&mut self, mut pos: usize, line0: usize, line1: usize) -> usize {
        for i in line0..line1 {
            let line = self.lines[i].clone();
            for (j, c) in line.iter().enumerate() {
                if c.size == 0 {
                    if j < self.widths.len() {
                        let w = self.widths[j];
                        self.write_padding(c.width, w, false);
                    }
                } else {
                    let text = &self.buf[pos..pos + c.size];
                    self.out.push_str(text);
                    pos += c.size;
                    if j < self.widths.len() {
                        let w = self.widths[j];
                        self.write_padding(c.width, w, false);
                    }
                }
            }
            if i + 1 == self.lines.len() {
                // Last buffered line: no newline, write any pending text.
                let end = pos + self.cell.size;
                let text = &self.buf[pos..end];
                self.out.push_str(text);
                pos = end;
            } else {
                self.out.push('\n');
            }
        }
        pos
    }

    /// Go's recursive column formatting: finds the next block of lines that
    /// have a cell in the current column, computes its width, and formats
    /// the columns to the right of it first.
    fn format(&mut self, pos0: usize, line0: usize, line1: usize) -> usize {
        let mut pos = pos0;
        let mut line0 = line0;
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            // This line has a cell in this column: print the lines before
            // the block, then the block.
            pos = self.write_lines(pos, line0, this);
            line0 = this;
            let mut width = self.minwidth;
            let mut discardable = true;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                let c = line[column];
                width = width.max(c.width + self.padding);
                if c.width > 0 || c.htab {
                    discardable = false;
                }
                this += 1;
            }
            let _ = discardable;
            self.widths.push(width);
            pos = self.format(pos, line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(pos, line0, line1)
    }
}

/// Aligns `text` with docker's table settings (`minwidth` 10, `tabwidth` 1,
/// `padding` 3, space padding).
pub fn align_docker(text: &str) -> String {
    let mut w = TabWriter::docker();
    w.write(text);
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_doc_example() {
        // From the text/tabwriter documentation, with padding 1.
        let mut w = TabWriter::new(0, 8, 1, '.');
        w.write("aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n");
        assert_eq!(w.flush(), "aaaa.bbb.d\naa...b...dd\na....\naa...cccc.eee\n");
    }

    #[test]
    fn docker_minwidth_and_padding() {
        let out = align_docker("NAME\tID\nabc\t1\n");
        assert_eq!(out, "NAME      ID\nabc       1\n");
        let out = align_docker("A-VERY-LONG-NAME\tX\tY\nb\tc\td\n");
        assert_eq!(out, "A-VERY-LONG-NAME   X         Y\nb                  c         d\n");
    }

    #[test]
    fn trailing_empty_cells_are_padded() {
        let out = align_docker("a\tb\t\nc\td\t\n");
        assert_eq!(out, "a         b         \nc         d         \n");
    }

    #[test]
    fn wide_characters_count_double() {
        let out = align_docker("日本語\tx\nab\ty\n");
        assert_eq!(out, "日本語    x\nab        y\n");
    }
}
