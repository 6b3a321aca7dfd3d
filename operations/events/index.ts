/** Events out (README "Events"): the audit trail sent to webhooks and syslog collectors, at least once. */
export { EVENT_TYPES, eventFilter, eventFromAudit, isEventPattern, isEventType, type EventType, type KakuinEvent } from './event.js';
export { EventDispatcher, type EventDestination, type EventDispatcherOptions } from './dispatcher.js';
export { signatureHeader, verifySignature } from './signature.js';
export { checkWebhookUrl, WebhookDestination, type WebhookOptions } from './webhook.js';
export { checkSyslogUrl, formatSyslogMessage, octetCounted, SD_ID, SyslogDestination, type SyslogOptions } from './syslog.js';
