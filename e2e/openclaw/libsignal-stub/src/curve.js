"use strict";
const unavailable = () => { throw new Error("libsignal stub: the WhatsApp channel is not available"); };
exports.generateKeyPair = unavailable;
exports.calculateAgreement = unavailable;
exports.calculateSignature = unavailable;
exports.verifySignature = unavailable;
