import type { Dialect } from '../../config/schema.ts';
import { anthropic } from './anthropic.ts';
import { openai } from './openai.ts';
import type { DialectRules } from './types.ts';

export const DIALECTS: Record<Dialect, DialectRules> = { openai, anthropic };
export type { DialectRules, OwnErrorKind } from './types.ts';
