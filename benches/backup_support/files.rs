//! A generated folder for the directory benchmark: many small files and a
//! few large ones in nested folders, half of them compressible text and
//! half random bytes that zstd cannot shrink.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Sizes in bytes of the small files, used in turn.
const SMALL_SIZES: [u64; 6] = [300, 2 << 10, 8 << 10, 20 << 10, 32 << 10, 64 << 10];

/// Number of small files; large files then fill up the total.
const SMALL_FILES: usize = 2000;

/// Sizes in bytes of the large files, used in turn.
const LARGE_SIZES: [u64; 4] = [1 << 20, 4 << 20, 8 << 20, 16 << 20];

/// Files per subfolder.
const FILES_PER_FOLDER: usize = 100;

const WORDS: [&str; 16] = [
    "rollback", "service", "release", "health", "backup", "restore", "commit", "deploy", "version",
    "catalog", "manifest", "status", "error", "timeout", "request", "config",
];

/// Fills the empty folder `root` with [`SMALL_FILES`] small files and
/// then large files until they reach at least `total` bytes. Returns the
/// number of files and their total size in bytes.
pub fn generate(root: &Path, total: u64) -> (usize, u64) {
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut written = 0;
    let mut count = 0;
    while count < SMALL_FILES || written < total {
        // Each round through a size list switches the content kind, so
        // every size comes in both kinds.
        let (size, round) = if count < SMALL_FILES {
            let index = count;
            (
                SMALL_SIZES[index % SMALL_SIZES.len()],
                index / SMALL_SIZES.len(),
            )
        } else {
            let index = count - SMALL_FILES;
            (
                LARGE_SIZES[index % LARGE_SIZES.len()],
                index / LARGE_SIZES.len(),
            )
        };
        let compressible = round % 2 == 0;
        let folder = root
            .join(format!("part-{:02}", count / FILES_PER_FOLDER / 4))
            .join(format!("group-{}", count / FILES_PER_FOLDER % 4));
        fs::create_dir_all(&folder).expect("create a fixture folder");
        let extension = if compressible { "log" } else { "bin" };
        let path = folder.join(format!("file-{count:05}.{extension}"));
        let mut file = BufWriter::new(fs::File::create(&path).expect("create a fixture file"));
        if compressible {
            write_text(&mut file, size, &mut random);
        } else {
            write_random(&mut file, size, &mut random);
        }
        file.flush().expect("write a fixture file");
        written += size;
        count += 1;
    }
    (count, written)
}

/// Writes `size` bytes of log-like lines: words and numbers from a small
/// vocabulary, which zstd level 3 shrinks several times.
fn write_text(out: &mut impl Write, size: u64, random: &mut XorShift) {
    let mut line = String::new();
    let mut left = size as usize;
    while left > 0 {
        line.clear();
        let value = random.next();
        line.push_str(&format!("{:010} ", value % 10_000_000_000));
        for shift in 0..6 {
            line.push_str(WORDS[(value >> (shift * 4)) as usize % WORDS.len()]);
            line.push(' ');
        }
        line.push_str(&format!("{}\n", value >> 48));
        let take = line.len().min(left);
        out.write_all(&line.as_bytes()[..take])
            .expect("write a fixture file");
        left -= take;
    }
}

fn write_random(out: &mut impl Write, size: u64, random: &mut XorShift) {
    let mut block = [0u8; 8192];
    let mut left = size as usize;
    while left > 0 {
        for chunk in block.chunks_exact_mut(8) {
            chunk.copy_from_slice(&random.next().to_le_bytes());
        }
        let take = block.len().min(left);
        out.write_all(&block[..take]).expect("write a fixture file");
        left -= take;
    }
}

/// Marsaglia's xorshift64 generator: fast, and the same bytes on every
/// run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
