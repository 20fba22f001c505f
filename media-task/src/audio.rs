//! Audio formats as the carriers and vendors name them.
//!
//! Inside a call, audio is 16-bit signed PCM, mono, at the call's sample rate (8 kHz
//! for Twilio; 8, 16 or 24 kHz for Exotel). Carriers' and vendors' formats are
//! converted at the edges: G.711 through [`crate::g711`], rates through
//! [`crate::resample`].

/// How samples are encoded on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// G.711 μ-law, one byte a sample.
    Mulaw,
    /// G.711 A-law, one byte a sample.
    Alaw,
    /// 16-bit signed little-endian PCM.
    Linear16,
}

/// An encoding at a sample rate; always mono.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AudioFormat {
    pub encoding: Encoding,
    pub sample_rate: u32,
}

impl AudioFormat {
    /// Twilio Media Streams, both ways.
    pub const MULAW_8K: AudioFormat = AudioFormat {
        encoding: Encoding::Mulaw,
        sample_rate: 8_000,
    };

    pub const fn linear16(sample_rate: u32) -> AudioFormat {
        AudioFormat {
            encoding: Encoding::Linear16,
            sample_rate,
        }
    }

    pub fn bytes_per_sample(self) -> usize {
        match self.encoding {
            Encoding::Mulaw | Encoding::Alaw => 1,
            Encoding::Linear16 => 2,
        }
    }

    /// Samples in `ms` milliseconds.
    pub fn samples_in(self, ms: u32) -> usize {
        (self.sample_rate as usize * ms as usize) / 1000
    }
}

/// 16-bit samples from little-endian bytes; an odd trailing byte is dropped.
pub fn pcm_from_le(bytes: &[u8], out: &mut Vec<i16>) {
    out.extend(
        bytes
            .chunks_exact(2)
            .map(|pair| i16::from_le_bytes([pair[0], pair[1]])),
    );
}

/// 16-bit samples as little-endian bytes.
pub fn pcm_to_le(samples: &[i16], out: &mut Vec<u8>) {
    out.reserve(samples.len() * 2);
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
}
