//! G.711: μ-law and A-law, the telephone network's 8-bit companding.
//!
//! G.711 carries 8 kHz voice as one byte per sample: a sign, a 3-bit segment (a power of
//! two) and a 4-bit step within it, so quiet sounds keep fine steps and loud ones coarse
//! ones. μ-law is the North American and Japanese variant, A-law the rest of the world's.
//! Carriers stream call audio this way (Twilio Media Streams send μ-law at 8 kHz), while
//! speech recognition, synthesis and recordings work on 16-bit linear PCM; this module
//! converts between the two.
//!
//! Decoding reads a 256-entry table built at compile time. Encoding computes the code
//! (a leading-zeros count finds the segment, a shift the step) rather than looking it up
//! in a 64 KiB table per law: the arithmetic is a handful of instructions, while a table
//! that large would crowd the caches that hundreds of concurrent calls per core share.
//!
//! The results match the classic Sun `g711.c`, as shipped in CPython's `audioop`, bit for
//! bit on every code and every 16-bit sample (see `tests/g711.rs`).
//!
//! ```
//! use parley_media::g711;
//!
//! let mut pcm = Vec::new();
//! g711::decode_ulaw_into(&[0xFF, 0x80, 0x00], &mut pcm);
//! assert_eq!(pcm, [0, 32124, -32124]);
//!
//! let mut ulaw = Vec::new();
//! g711::encode_ulaw_into(&pcm, &mut ulaw);
//! assert_eq!(ulaw, [0xFF, 0x80, 0x00]);
//! ```

/// μ-law's bias: added to the magnitude (at 14-bit scale, so 0x84 >> 2) before encoding,
/// so every segment starts at a power of two; subtracted again when decoding.
const ULAW_BIAS: i16 = 0x84;

/// The largest μ-law magnitude at 14-bit scale once biased: it encodes to segment 7,
/// step 15, the loudest code. Larger magnitudes clip to it.
const ULAW_BIASED_MAX: u32 = 0x1FFF;

/// Every μ-law code's linear value, indexed by the code.
static ULAW_TO_LINEAR: [i16; 256] = ulaw_table();

/// Every A-law code's linear value, indexed by the code.
static ALAW_TO_LINEAR: [i16; 256] = alaw_table();

const fn ulaw_table() -> [i16; 256] {
    let mut table = [0; 256];
    let mut code = 0;
    while code < 256 {
        // μ-law sends every bit inverted.
        let bits = !(code as u8);
        let step = (bits & 0x0F) as i16;
        let segment = (bits >> 4) & 0x07;
        let biased = ((step << 3) + ULAW_BIAS) << segment;
        table[code] = if bits & 0x80 != 0 {
            ULAW_BIAS - biased
        } else {
            biased - ULAW_BIAS
        };
        code += 1;
    }
    table
}

const fn alaw_table() -> [i16; 256] {
    let mut table = [0; 256];
    let mut code = 0;
    while code < 256 {
        // A-law sends the even bits inverted.
        let bits = code as u8 ^ 0x55;
        let step = (bits & 0x0F) as i16;
        let segment = (bits >> 4) & 0x07;
        // Segments 0 and 1 share a step size; from segment 2 on each doubles it.
        let magnitude = match segment {
            0 => (step << 4) + 8,
            _ => ((step << 4) + 0x108) << (segment - 1),
        };
        table[code] = if bits & 0x80 != 0 {
            magnitude
        } else {
            -magnitude
        };
        code += 1;
    }
    table
}

/// The linear 16-bit sample a μ-law code stands for.
///
/// Codes 0x7F and 0xFF (negative and positive zero) both decode to 0.
#[inline]
pub fn ulaw_decode(byte: u8) -> i16 {
    ULAW_TO_LINEAR[usize::from(byte)]
}

/// The μ-law code for a linear 16-bit sample.
///
/// Magnitudes beyond μ-law's range (32,124) clip to the loudest code.
///
/// As in `g711.c`, the sample is first scaled to 14 bits with an arithmetic shift, which
/// rounds towards negative infinity: -1 to -4 encode as the smallest negative code (0x7E,
/// which decodes to -8) while 0 to 3 encode as zero (0xFF).
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    let scaled = i32::from(sample) >> 2;
    // μ-law sends every bit inverted; the sign bit is set for non-negative samples.
    let invert: u8 = if scaled < 0 { 0x7F } else { 0xFF };
    let biased = (scaled.unsigned_abs() + (ULAW_BIAS >> 2) as u32).min(ULAW_BIASED_MAX);
    // `biased` lies in 0x21..=0x1FFF: its top bit is bit 5 (segment 0) to bit 12 (segment 7).
    let segment = 26 - biased.leading_zeros();
    let step = (biased >> (segment + 1)) & 0x0F;
    ((segment << 4) as u8 | step as u8) ^ invert
}

/// The linear 16-bit sample an A-law code stands for.
#[inline]
pub fn alaw_decode(byte: u8) -> i16 {
    ALAW_TO_LINEAR[usize::from(byte)]
}

/// The A-law code for a linear 16-bit sample.
///
/// As in `g711.c`, the sample is first scaled to 13 bits with an arithmetic shift and a
/// negative sample's magnitude is taken as its one's complement, which makes the law
/// symmetric: -8 to -1 encode as 0x55 (decoding to -8) just as 0 to 7 encode as 0xD5
/// (decoding to 8).
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    let scaled = i32::from(sample) >> 3;
    // A-law sends the even bits inverted; the sign bit is set for non-negative samples.
    let (invert, magnitude): (u8, u32) = if scaled < 0 {
        (0x55, !scaled as u32)
    } else {
        (0xD5, scaled as u32)
    };
    // `magnitude` lies in 0..=0xFFF. Segment 0 covers 0..0x20 with the same step size as
    // segment 1 (0x20..0x40); each later segment starts at the next power of two.
    let segment = 27 - (magnitude | 0x10).leading_zeros();
    let step = (magnitude >> segment.max(1)) & 0x0F;
    ((segment << 4) as u8 | step as u8) ^ invert
}

/// Decodes μ-law `input`, appending one linear sample per byte to `out`.
#[inline]
pub fn decode_ulaw_into(input: &[u8], out: &mut Vec<i16>) {
    out.extend(input.iter().map(|&byte| ulaw_decode(byte)));
}

/// Encodes linear `input` as μ-law, appending one byte per sample to `out`.
#[inline]
pub fn encode_ulaw_into(input: &[i16], out: &mut Vec<u8>) {
    out.extend(input.iter().map(|&sample| ulaw_encode(sample)));
}

/// Decodes A-law `input`, appending one linear sample per byte to `out`.
#[inline]
pub fn decode_alaw_into(input: &[u8], out: &mut Vec<i16>) {
    out.extend(input.iter().map(|&byte| alaw_decode(byte)));
}

/// Encodes linear `input` as A-law, appending one byte per sample to `out`.
#[inline]
pub fn encode_alaw_into(input: &[i16], out: &mut Vec<u8>) {
    out.extend(input.iter().map(|&sample| alaw_encode(sample)));
}
