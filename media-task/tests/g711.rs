//! G.711 against its reference: CPython's `audioop` (the classic Sun `g711.c`), on every
//! code point and every 16-bit sample of both laws.
//!
//! The expected values are committed fixtures written by `fixtures/g711_reference.py`
//! (which says how to regenerate them), so these tests need no Python.

use parley_media::g711::{
    alaw_decode, alaw_encode, decode_alaw_into, decode_ulaw_into, encode_alaw_into,
    encode_ulaw_into, ulaw_decode, ulaw_encode,
};

/// 256 little-endian i16: the linear value of code 0x00, 0x01, …, 0xFF.
const ULAW_DECODE: &[u8] = include_bytes!("fixtures/ulaw_decode.bin");
const ALAW_DECODE: &[u8] = include_bytes!("fixtures/alaw_decode.bin");
/// 65,536 codes: byte `i` is the encoding of sample `i - 32768`.
const ULAW_ENCODE: &[u8] = include_bytes!("fixtures/ulaw_encode.bin");
const ALAW_ENCODE: &[u8] = include_bytes!("fixtures/alaw_encode.bin");

fn decode_table(fixture: &[u8]) -> Vec<i16> {
    assert_eq!(fixture.len(), 512, "a decode fixture holds 256 i16");
    fixture
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
        .collect()
}

fn every_code() -> impl Iterator<Item = u8> {
    0..=u8::MAX
}

fn every_sample() -> impl Iterator<Item = i16> {
    i16::MIN..=i16::MAX
}

fn assert_decodes_like_reference(law: &str, decode: fn(u8) -> i16, fixture: &[u8]) {
    let expected = decode_table(fixture);
    for code in every_code() {
        assert_eq!(
            decode(code),
            expected[usize::from(code)],
            "{law} decode of code {code:#04x}"
        );
    }
}

fn assert_encodes_like_reference(law: &str, encode: fn(i16) -> u8, fixture: &[u8]) {
    assert_eq!(
        fixture.len(),
        65_536,
        "an encode fixture holds one code per sample"
    );
    for (sample, &expected) in every_sample().zip(fixture) {
        assert_eq!(encode(sample), expected, "{law} encode of sample {sample}");
    }
}

#[test]
fn ulaw_decodes_every_code_like_the_reference() {
    assert_decodes_like_reference("μ-law", ulaw_decode, ULAW_DECODE);
}

#[test]
fn alaw_decodes_every_code_like_the_reference() {
    assert_decodes_like_reference("A-law", alaw_decode, ALAW_DECODE);
}

#[test]
fn ulaw_encodes_every_sample_like_the_reference() {
    assert_encodes_like_reference("μ-law", ulaw_encode, ULAW_ENCODE);
}

#[test]
fn alaw_encodes_every_sample_like_the_reference() {
    assert_encodes_like_reference("A-law", alaw_encode, ALAW_ENCODE);
}

#[test]
fn ulaw_reencoding_a_decoded_code_gives_it_back() {
    for code in every_code() {
        let decoded = ulaw_decode(code);
        assert_eq!(
            ulaw_decode(ulaw_encode(decoded)),
            decoded,
            "code {code:#04x}"
        );
        // Negative zero (0x7F) decodes to 0, which encodes as positive zero (0xFF).
        let expected = if code == 0x7F { 0xFF } else { code };
        assert_eq!(ulaw_encode(decoded), expected, "code {code:#04x}");
    }
}

#[test]
fn alaw_reencoding_a_decoded_code_gives_it_back() {
    for code in every_code() {
        let decoded = alaw_decode(code);
        assert_eq!(
            alaw_decode(alaw_encode(decoded)),
            decoded,
            "code {code:#04x}"
        );
        assert_eq!(alaw_encode(decoded), code, "code {code:#04x}");
    }
}

#[test]
fn well_known_codes() {
    // μ-law silence is 0xFF; its extremes are ±32,124.
    assert_eq!(ulaw_encode(0), 0xFF);
    assert_eq!(ulaw_decode(0xFF), 0);
    assert_eq!(ulaw_decode(0x80), 32_124);
    assert_eq!(ulaw_decode(0x00), -32_124);
    assert_eq!(ulaw_encode(i16::MAX), 0x80);
    assert_eq!(ulaw_encode(i16::MIN), 0x00);
    // A-law silence is 0xD5; its extremes are ±32,256.
    assert_eq!(alaw_encode(0), 0xD5);
    assert_eq!(alaw_decode(0xD5), 8);
    assert_eq!(alaw_decode(0xAA), 32_256);
    assert_eq!(alaw_decode(0x2A), -32_256);
    assert_eq!(alaw_encode(i16::MAX), 0xAA);
    assert_eq!(alaw_encode(i16::MIN), 0x2A);
}

#[test]
fn slice_helpers_append_what_the_sample_functions_give() {
    let codes: Vec<u8> = every_code().collect();
    let samples: Vec<i16> = every_sample().collect();

    let mut pcm = vec![7_i16];
    decode_ulaw_into(&codes, &mut pcm);
    assert_eq!(pcm[0], 7, "what was in the buffer stays");
    assert!(
        pcm[1..]
            .iter()
            .copied()
            .eq(codes.iter().map(|&c| ulaw_decode(c)))
    );

    let mut pcm = vec![7_i16];
    decode_alaw_into(&codes, &mut pcm);
    assert_eq!(pcm[0], 7, "what was in the buffer stays");
    assert!(
        pcm[1..]
            .iter()
            .copied()
            .eq(codes.iter().map(|&c| alaw_decode(c)))
    );

    let mut bytes = vec![7_u8];
    encode_ulaw_into(&samples, &mut bytes);
    assert_eq!(bytes[0], 7, "what was in the buffer stays");
    assert_eq!(&bytes[1..], ULAW_ENCODE);

    let mut bytes = vec![7_u8];
    encode_alaw_into(&samples, &mut bytes);
    assert_eq!(bytes[0], 7, "what was in the buffer stays");
    assert_eq!(&bytes[1..], ALAW_ENCODE);
}

#[test]
fn slice_helpers_leave_the_buffer_alone_on_empty_input() {
    let mut pcm = vec![1_i16, 2];
    decode_ulaw_into(&[], &mut pcm);
    decode_alaw_into(&[], &mut pcm);
    assert_eq!(pcm, [1, 2]);

    let mut bytes = vec![1_u8, 2];
    encode_ulaw_into(&[], &mut bytes);
    encode_alaw_into(&[], &mut bytes);
    assert_eq!(bytes, [1, 2]);
}
