/** What the responder needs of a logger (the composition root provides one; same shape as the API's). */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}${(e as { code?: string }).code ? ` (${(e as { code?: string }).code})` : ''}`;
  return String(e);
}
