/**
 * Detection routes of the management API (README "Detections"; roles in api-schema/access.ts):
 *
 *   GET  /api/v1/detection-templates                      → {templates} (the latest version of each)
 *   POST /api/v1/detection-templates {id, description?, assignedTo?, rules}   → 201 template (version 1)
 *   GET  /api/v1/detection-templates/{id}?version=         → template (latest, or the version named)
 *   PUT  /api/v1/detection-templates/{id} {description?, assignedTo?, rules}  → 200 template (version n+1)
 *   GET  /api/v1/detections?deviceId=&state=&rule=&templateId=&action=&limit=&after=   → {detections, next?}
 *   GET  /api/v1/detections/{id}                           → detection (with its evidence)
 *   POST /api/v1/detections/{id}/acknowledge {note?}       → detection (open → acknowledged)
 *   POST /api/v1/detections/{id}/resolve {note?}           → detection (open | acknowledged → resolved)
 *
 * Without detections in this process (detections.enabled false, or a read-only registry) every
 * route answers 409 KAKUIN_E_DETECTIONS_OFF.
 */
import type { RequestHandler } from 'express';
import { z } from 'zod';
import type { ApiRoutes } from '../api-schema/routes.js';
import { pageJson, pageQuery, readPage } from '../api-schema/paging.js';
import { KakuinError } from '../errors/index.js';
import type { DetectionService } from '../operations/detections/service.js';
import { ASSIGNMENT, RULES, TEMPLATE_ID, TEMPLATE_RULES, type DetectionTemplate } from '../operations/detections/template.js';
import { DETECTION_ACTIONS, DETECTION_STATES, type DetectionRecord } from '../registry/detections.js';

export interface DetectionRouteDeps {
  detections?: DetectionService;
  admin: RequestHandler;
}

export function templateJson(t: DetectionTemplate) {
  return {
    id: t.id, version: t.version, description: t.description, assignedTo: t.assignedTo, rules: t.rules,
    createdAt: t.createdAt.toISOString(), createdBy: t.createdBy,
  };
}

export function detectionJson(d: DetectionRecord) {
  const iso = (x: Date | undefined) => x?.toISOString();
  return {
    id: d.id, deviceId: d.deviceId, templateId: d.templateId, templateVersion: d.templateVersion, rule: d.rule, action: d.action,
    state: d.state, summary: d.summary, evidence: d.evidence, outcome: d.outcome ?? null, detectedAt: d.detectedAt.toISOString(),
    ...(d.acknowledgedAt !== undefined && { acknowledgedAt: iso(d.acknowledgedAt), acknowledgedBy: d.acknowledgedBy, acknowledgeNote: d.acknowledgeNote }),
    ...(d.resolvedAt !== undefined && { resolvedAt: iso(d.resolvedAt), resolvedBy: d.resolvedBy, resolveNote: d.resolveNote }),
  };
}

// The template body: its fields are checked again, with the rules' own messages, by the service.
const TEMPLATE_BODY = {
  description: z.string().max(2000).optional(),
  assignedTo: ASSIGNMENT.partial().optional(),
  rules: TEMPLATE_RULES,
};
const NOTE = z.strictObject({ note: z.string().max(2000).optional().describe('why (kept with the detection)') });
const DETECTION_QUERY = z.strictObject({
  deviceId: z.string().min(1).max(128).optional(),
  state: z.enum(DETECTION_STATES).optional(),
  rule: z.enum(RULES).optional(),
  templateId: TEMPLATE_ID.optional(),
  action: z.enum(DETECTION_ACTIONS).optional(),
  ...pageQuery,
});

export function mountDetectionRoutes(routes: ApiRoutes, deps: DetectionRouteDeps): void {
  const { admin } = deps;
  const on = (): DetectionService => {
    if (deps.detections === undefined) throw new KakuinError('KAKUIN_E_DETECTIONS_OFF', 'detections are not evaluated in this process (detections.enabled, or a read-only registry connection)');
    return deps.detections;
  };

  routes.add({
    method: 'get', path: '/api/v1/detection-templates', summary: 'detection templates (the latest version of each)', callers: ['admin'], use: [admin],
    response: { status: 200, description: '{templates}' },
    handler: async ({ res }) => {
      res.json({ templates: (await on().templates()).map(templateJson) });
    },
  });
  routes.add({
    method: 'post', path: '/api/v1/detection-templates', summary: 'create a detection template (version 1)', callers: ['admin'], use: [admin],
    body: { json: z.strictObject({ id: TEMPLATE_ID, ...TEMPLATE_BODY }) }, response: { status: 201, description: 'the template' },
    handler: async ({ req, res, body }) => {
      const t = await on().createTemplate(body, req.caller!.actor);
      res.status(201).location(`/api/v1/detection-templates/${t.id}`).json(templateJson(t));
    },
  });
  routes.add({
    method: 'get', path: '/api/v1/detection-templates/{id}', summary: 'one detection template: the latest version, or ?version=', callers: ['admin'], use: [admin],
    query: z.strictObject({ version: z.coerce.number().int().min(1).optional().describe('an earlier version (every version is kept)') }),
    handler: async ({ res, params, query }) => {
      res.json(templateJson(await on().template(params.id, query.version)));
    },
  });
  routes.add({
    method: 'put', path: '/api/v1/detection-templates/{id}', summary: 'replace a detection template: makes version n+1 (detections keep naming theirs)', callers: ['admin'], use: [admin],
    body: { json: z.strictObject({ id: TEMPLATE_ID.optional(), ...TEMPLATE_BODY }) }, response: { status: 200, description: 'the new version' },
    handler: async ({ req, res, body, params }) => {
      res.json(templateJson(await on().updateTemplate(params.id, body, req.caller!.actor)));
    },
  });

  routes.add({
    method: 'get', path: '/api/v1/detections', summary: 'detections, newest first', callers: ['admin'], use: [admin],
    query: DETECTION_QUERY, response: { status: 200, description: '{detections, next?}' },
    handler: async ({ res, query }) => {
      const { after, limit, ...filters } = query;
      const page = await readPage((afterId, n) => on().detections({ ...filters, ...(afterId !== undefined && { afterId }), limit: n }), (d) => d.id, { after, limit });
      res.json(pageJson('detections', page, detectionJson));
    },
  });
  routes.add({
    method: 'get', path: '/api/v1/detections/{id}', summary: 'one detection with its evidence', callers: ['admin'], use: [admin],
    handler: async ({ res, params }) => {
      res.json(detectionJson(await on().detection(params.id)));
    },
  });
  routes.add({
    method: 'post', path: '/api/v1/detections/{id}/acknowledge', summary: 'someone is on it (open → acknowledged)', callers: ['admin'], use: [admin],
    body: { json: NOTE, optional: true },
    handler: async ({ req, res, body, params }) => {
      res.json(detectionJson(await on().acknowledge(params.id, req.caller!.actor, body?.note)));
    },
  });
  routes.add({
    method: 'post', path: '/api/v1/detections/{id}/resolve', summary: 'done (→ resolved); a suspended device stays suspended until resumed', callers: ['admin'], use: [admin],
    body: { json: NOTE, optional: true },
    handler: async ({ req, res, body, params }) => {
      res.json(detectionJson(await on().resolve(params.id, req.caller!.actor, body?.note)));
    },
  });
}
