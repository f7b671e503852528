//! Random bytes from the kernel, for names no one can guess (heredoc
//! delimiters, private folders).

use std::io::Read;

/// `bytes` random bytes as lower-case hex.
pub fn hex(bytes: usize) -> std::io::Result<String> {
    let mut buffer = vec![0u8; bytes];
    fill(&mut buffer)?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

/// Fills `buffer` with random bytes.
pub fn fill(buffer: &mut [u8]) -> std::io::Result<()> {
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(buffer))
}
