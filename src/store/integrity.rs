//! Integrity of what the index stores on disk.
//!
//! redb keeps its own structures consistent across crashes and kills, but it does not
//! check the bytes of a value when reading it, and a damaged file (truncated, or pages
//! overwritten) can make it panic deep inside. So every value the index writes ends in a
//! CRC-32 of its table, key and bytes ([`seal`]; checked by [`unseal`]), and every call
//! into redb runs under [`catch_panics`], which turns such a panic into an error naming
//! the file instead of a crash.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

/// Bytes the checksum adds to every value.
pub const CHECKSUM_BYTES: usize = 4;

fn checksum(table: &str, key: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(table.as_bytes());
    h.update(&[0]);
    h.update(key);
    h.update(&[0]);
    h.update(payload);
    h.finalize()
}

/// `payload` followed by the little-endian CRC-32 of `table`, `key` and `payload`: a
/// value moved under another key or table fails the check as a changed byte does.
pub fn seal(table: &str, key: &[u8], mut payload: Vec<u8>) -> Vec<u8> {
    let sum = checksum(table, key, &payload);
    payload.extend_from_slice(&sum.to_le_bytes());
    payload
}

/// The payload of a value written by [`seal`] under the same table and key, or `None`
/// when it is too short or its checksum does not match.
pub fn unseal<'a>(table: &str, key: &[u8], value: &'a [u8]) -> Option<&'a [u8]> {
    let split = value.len().checked_sub(CHECKSUM_BYTES)?;
    let (payload, sum) = value.split_at(split);
    let sum = u32::from_le_bytes(sum.try_into().ok()?);
    (checksum(table, key, payload) == sum).then_some(payload)
}

thread_local! {
    /// How many [`catch_panics`] calls this thread is inside.
    static GUARDED: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f`; a panic inside it becomes `on_panic(the first line of its message)`. The
/// panic's default report (message and backtrace on stderr) is left out: the error says
/// what happened.
pub fn catch_panics<T, E>(
    f: impl FnOnce() -> Result<T, E>,
    on_panic: impl FnOnce(String) -> E,
) -> Result<T, E> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if GUARDED.with(|g| g.get()) == 0 {
                previous(info);
            }
        }));
    });
    GUARDED.with(|g| g.set(g.get() + 1));
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(g.get() - 1));
    outcome.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(on_panic(message.lines().next().unwrap_or("").to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_under_its_own_table_and_key() {
        let v = seal("graphs", &7u32.to_le_bytes(), vec![1, 2, 3]);
        assert_eq!(v.len(), 3 + CHECKSUM_BYTES);
        assert_eq!(
            unseal("graphs", &7u32.to_le_bytes(), &v),
            Some(&[1u8, 2, 3][..])
        );
        assert_eq!(unseal("graphs", &8u32.to_le_bytes(), &v), None);
        assert_eq!(unseal("neurons", &7u32.to_le_bytes(), &v), None);
        for i in 0..v.len() {
            let mut bad = v.clone();
            bad[i] ^= 0x10;
            assert_eq!(
                unseal("graphs", &7u32.to_le_bytes(), &bad),
                None,
                "byte {i}"
            );
        }
        assert_eq!(unseal("graphs", &7u32.to_le_bytes(), &v[..3]), None);
        // An empty payload is a valid value.
        let e = seal("meta", b"k", Vec::new());
        assert_eq!(unseal("meta", b"k", &e), Some(&[][..]));
    }

    #[test]
    fn panics_become_errors_and_guards_nest() {
        let r: Result<u32, String> = catch_panics(|| panic!("inner {}\nmore", 1), |m| m);
        assert_eq!(r, Err("inner 1".to_string()));
        let r: Result<u32, String> = catch_panics(|| Ok(5), |m| m);
        assert_eq!(r, Ok(5));
        let r: Result<Result<u32, String>, String> =
            catch_panics(|| Ok(catch_panics(|| panic!("deep"), |m| m)), |m| m);
        assert_eq!(r, Ok(Err("deep".to_string())));
        assert_eq!(GUARDED.with(|g| g.get()), 0);
    }
}
