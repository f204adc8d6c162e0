"""Media of the built-in engine: SDP, RTP, G.711, jitter buffer, DTMF, WAV files."""
