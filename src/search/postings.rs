//! Reading a serialized roaring bitmap (the portable format that `roaring` writes)
//! in place, without building it: `similar` walks the postings of every token of its
//! target, and for common tokens those hold most neurons.

/// Cookie of the format without run containers (then a `u32` container count).
const NO_RUNS: u32 = 12346;
/// Cookie of the format with run containers (container count in the high half).
const RUNS: u32 = 12347;
/// Containers of at most this many values are arrays.
const ARRAY_LIMIT: usize = 4096;

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Calls `f` with every value of the serialized bitmap `b`, ascending; `None` when `b`
/// is malformed (`f` may have seen part of it).
pub(crate) fn for_each(b: &[u8], mut f: impl FnMut(u32)) -> Option<()> {
    let cookie = u32_at(b, 0)?;
    let (size, runs_at, mut at) = if cookie == NO_RUNS {
        (u32_at(b, 4)? as usize, None, 8)
    } else if cookie & 0xffff == RUNS {
        let size = (cookie >> 16) as usize + 1;
        (size, Some(4), 4 + size.div_ceil(8))
    } else {
        return None;
    };
    let is_run = |i: usize| -> Option<bool> {
        match runs_at {
            Some(r) => Some(b.get(r + i / 8)? >> (i % 8) & 1 == 1),
            None => Some(false),
        }
    };
    let headers = at;
    at += 4 * size;
    if runs_at.is_none() || size >= 4 {
        at += 4 * size; // offsets: the containers follow in order anyway
    }
    for i in 0..size {
        let key = (u16_at(b, headers + 4 * i)? as u32) << 16;
        let card = u16_at(b, headers + 4 * i + 2)? as usize + 1;
        if is_run(i)? {
            let n = u16_at(b, at)? as usize;
            at += 2;
            for r in 0..n {
                let start = u16_at(b, at + 4 * r)? as u32;
                let len = u16_at(b, at + 4 * r + 2)? as u32;
                for v in start..=(start + len).min(0xffff) {
                    f(key | v);
                }
            }
            at += 4 * n;
        } else if card <= ARRAY_LIMIT {
            let values = b.get(at..at + 2 * card)?;
            for v in values.chunks_exact(2) {
                f(key | u16::from_le_bytes([v[0], v[1]]) as u32);
            }
            at += 2 * card;
        } else {
            let words = b.get(at..at + 8 * 1024)?;
            for (w, bytes) in words.chunks_exact(8).enumerate() {
                let mut bits = u64::from_le_bytes(bytes.try_into().ok()?);
                let base = key | (w as u32) << 6;
                while bits != 0 {
                    f(base | bits.trailing_zeros());
                    bits &= bits - 1;
                }
            }
            at += 8 * 1024;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use roaring::RoaringBitmap;

    fn check(b: &RoaringBitmap) {
        let mut bytes = Vec::new();
        b.serialize_into(&mut bytes).unwrap();
        let mut got = Vec::new();
        super::for_each(&bytes, |v| got.push(v)).unwrap();
        assert_eq!(got, b.iter().collect::<Vec<_>>());
    }

    #[test]
    fn reads_every_kind_of_container() {
        check(&RoaringBitmap::new());
        let mut b: RoaringBitmap = [1u32, 5, 70_000, 1 << 20].into_iter().collect();
        check(&b);
        b.insert_range(200_000..260_000);
        for v in (400_000..500_000).step_by(3) {
            b.insert(v);
        }
        b.insert(u32::MAX);
        check(&b);
        let mut runs = b.clone();
        runs.optimize();
        check(&runs);
        let few: RoaringBitmap = (0..5000u32).map(|v| v * 17).collect();
        check(&few);
    }

    #[test]
    fn refuses_garbage() {
        assert!(super::for_each(&[1, 2, 3], |_| {}).is_none());
        assert!(super::for_each(&[0x3a, 0x30, 0, 0, 9, 0, 0, 0], |_| {}).is_none());
    }
}
