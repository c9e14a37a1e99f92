//! The simulator's seeds: a hash of a name that is the same in every process, and a mix that
//! spreads a seed's bits, for traffic that is random-looking but repeatable.
//!
//! Its own few lines, not the exporter's scheduler hash: the simulator shares no code with the
//! exporter but the socket clocks (the values happen to be the same, FNV-1a then splitmix64).

/// FNV-1a over the name's bytes and the `0xff` that `str`'s `Hash` appends, then [`mix`].
pub(crate) fn of(name: &str) -> u64 {
    let fnv = name
        .bytes()
        .chain([0xff])
        .fold(0xcbf2_9ce4_8422_2325, |h: u64, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    mix(fnv)
}

/// The splitmix64 finaliser: every input bit spread over the output.
pub(crate) fn mix(x: u64) -> u64 {
    let x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_seed_is_the_same_in_every_process() {
        // Fixed figures: a change of the hash changes every simulated service's traffic.
        assert_eq!(super::of("checkout"), 0x57ae_0e06_bd3c_92e4);
        assert_eq!(super::mix(0), 0xe220_a839_7b1d_cdaf);
    }
}
