/** CMP (RFC 9810, Lightweight CMP profile RFC 9483): PKIMessage reading, writing and protection. */
export * from './pki-message.js';
export * from './pki-answer-read.js';
export * from './pki-message-encode.js';
export * from './protection.js';
