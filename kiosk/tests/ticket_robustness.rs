//! Feeds over a million random and mutated inputs to `verify` and checks it never panics and never accepts
//! anything but an untouched valid ticket.
//!
//! Seeded and deterministic (a fixed xorshift seed, no OS randomness), so a failure reproduces exactly.
//! This is a smoke-level fuzzer in the test suite, not a replacement for coverage-guided fuzzing.

use std::collections::BTreeMap;

use kiosk::ticket::{
    IssuerKey, Rejection, TEXT_PREFIX, Ticket, TicketId, TrustedKeys, VerifyPolicy, issue, verify,
};

const NOW: i64 = 1_781_000_000;
const INPUTS: usize = 1_000_000;
const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn valid_tickets(trusted: &IssuerKey, other: &IssuerKey) -> Vec<(String, Ticket)> {
    let base = Ticket {
        id: TicketId([0x5a; 16]),
        student_no: "2201210345".into(),
        masked_name: "欧**娜".into(),
        school: "北京航空航天大学".into(),
        id_last4: "0427".into(),
        site: "BUAA-1".into(),
        photo_types: vec!["chsi-graduate".into(), "visa-33x48".into()],
        shots_allowed: 3,
        paid: false,
        issued_at: NOW - 60,
        expires_at: NOW + 3600,
        key_id: trusted.key_id,
    };
    let largest = Ticket {
        student_no: "9".repeat(24),
        masked_name: "名".repeat(16),
        school: "学".repeat(30),
        site: "*".into(),
        photo_types: (0..4).map(|i| format!("{i}").repeat(24)).collect(),
        paid: true,
        ..base.clone()
    };
    let untrusted = Ticket {
        key_id: other.key_id,
        ..base.clone()
    };
    let expired = Ticket {
        issued_at: NOW - 7200,
        expires_at: NOW - 1,
        ..base.clone()
    };
    [
        (base, trusted),
        (largest, trusted),
        (untrusted, other),
        (expired, trusted),
    ]
    .into_iter()
    .map(|(t, k)| (issue(&t, k).expect("issue"), t))
    .collect()
}

fn mutate_text(rng: &mut Rng, text: &[u8], kind: usize) -> Vec<u8> {
    let mut v = text.to_vec();
    match kind {
        // Flips to any byte value.
        0 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(v.len());
                v[i] = rng.byte();
            }
        }
        // Flips to another base45 character: decodes, so it reaches the parser and often the signature.
        1 => {
            for _ in 0..1 + rng.below(3) {
                let i = TEXT_PREFIX.len() + rng.below(v.len() - TEXT_PREFIX.len());
                v[i] = ALPHABET[rng.below(ALPHABET.len())];
            }
        }
        // Truncation.
        2 => v.truncate(rng.below(v.len())),
        // Insertions of base45 characters or arbitrary bytes.
        _ => {
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(v.len() + 1);
                let b = if rng.below(2) == 0 {
                    ALPHABET[rng.below(ALPHABET.len())]
                } else {
                    rng.byte()
                };
                v.insert(i, b);
            }
        }
    }
    v
}

/// Mutations on the decoded bytes, re-encoded canonically, so length fields and bounds are what breaks.
fn mutate_bytes(rng: &mut Rng, text: &[u8]) -> Vec<u8> {
    let mut b = base45::decode(&text[TEXT_PREFIX.len()..]).expect("valid base45");
    match rng.below(4) {
        0 => {
            let i = rng.below(b.len());
            b[i] ^= 1 << rng.below(8);
        }
        1 => {
            let i = rng.below(b.len());
            b[i] = rng.byte();
        }
        2 => b.truncate(rng.below(b.len())),
        _ => {
            let i = rng.below(b.len() + 1);
            b.insert(i, rng.byte());
        }
    }
    format!("{TEXT_PREFIX}{}", base45::encode(&b)).into_bytes()
}

#[test]
fn a_million_random_and_mutated_inputs_never_panic_or_pass() {
    let trusted_key = IssuerKey::from_seed(0x00c0_ffee, [42; 32]);
    let other_key = IssuerKey::from_seed(0x0bad_f00d, [43; 32]);
    let keys = TrustedKeys::from_pairs([(trusted_key.key_id, trusted_key.public().hex())]).expect("keys");
    let policy = VerifyPolicy::new("BUAA-1");
    let valid = valid_tickets(&trusted_key, &other_key);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();

    let t0 = kiosk::clock::monotonic();
    for i in 0..INPUTS {
        let (text, ticket) = &valid[rng.below(valid.len())];
        let text = text.as_bytes();
        let input: Vec<u8> = match i % 8 {
            // Random bytes, sometimes behind our prefix.
            0 => {
                let mut v: Vec<u8> = (0..rng.below(400)).map(|_| rng.byte()).collect();
                if rng.below(2) == 0 {
                    v.splice(0..0, TEXT_PREFIX.bytes());
                }
                v
            }
            // Random base45 behind our prefix, up to past the maximum length.
            1 => {
                let n = rng.below(700);
                TEXT_PREFIX
                    .bytes()
                    .chain((0..n).map(|_| ALPHABET[rng.below(ALPHABET.len())]))
                    .collect()
            }
            2..=5 => mutate_text(&mut rng, text, i % 8 - 2),
            _ => mutate_bytes(&mut rng, text),
        };
        let result = verify(&input, &keys, &policy, NOW);
        if let Ok(got) = &result {
            // Only an unchanged valid ticket may pass; a mutation that happens to be a no-op is fine.
            assert_eq!(input.trim_ascii(), text, "input {i} passed after mutation");
            assert_eq!(got, ticket);
        }
        *outcomes
            .entry(result.as_ref().map_or_else(Rejection::code, |_| "accepted"))
            .or_default() += 1;
    }
    let elapsed = t0.elapsed();
    println!("verify robustness: {INPUTS} inputs in {elapsed:.2?}; outcomes {outcomes:?}");
    for must_see in ["raw_chsi_code", "malformed", "unknown_key", "bad_signature"] {
        assert!(
            outcomes.get(must_see).copied().unwrap_or(0) > 100,
            "too few {must_see}: {outcomes:?}"
        );
    }
}
