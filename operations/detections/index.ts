export { DetectionEngine, compileTemplate, type CompiledTemplate, type Finding } from './engine.js';
export { DetectionFeed } from './feed.js';
export { DetectionResponder, DETECTION_ACTOR_PREFIX } from './responder.js';
export { DetectionService } from './service.js';
export { InProcessSessionCounts, type SessionCounts } from './session-counts.js';
export { SHIPPED_TEMPLATES } from './shipped-templates.js';
export { registrySubjects } from './subjects.js';
export * from './template.js';
