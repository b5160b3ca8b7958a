"use strict";
const unavailable = () => { throw new Error("libsignal stub: the WhatsApp channel is not available"); };
exports.deriveSecrets = unavailable;
exports.decrypt = unavailable;
exports.encrypt = unavailable;
exports.calculateMAC = unavailable;
