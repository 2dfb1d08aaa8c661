//! Minimal, valid binary payloads the fixtures return, base64-encoded.

/// A 1×1 RGB PNG (one sea-green pixel).
pub(super) const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mPQ6w4HAAH7ARFK28dFAAAAAElFTkSuQmCC";

/// A WAV file: 8 kHz, 16-bit mono PCM, eight samples of silence.
pub(super) const WAV_BASE64: &str =
    "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YRAAAAAAAAAAAAAAAAAAAAAAAAAA";
