// Stub of libsignal for openclaw releases that import the WhatsApp channel eagerly: the channel
// is never started (OPENCLAW_SKIP_CHANNELS=1), so nothing here is ever called.
"use strict";
const unavailable = () => { throw new Error("libsignal stub: the WhatsApp channel is not available"); };
class Unavailable { constructor() { unavailable(); } }
exports.SessionCipher = Unavailable;
exports.SessionBuilder = Unavailable;
exports.SessionRecord = Unavailable;
exports.ProtocolAddress = Unavailable;
