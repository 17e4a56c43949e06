// BgsyncErrorCode (web/index.d.ts) must list exactly the codes of MESSAGES in
// web/BgsyncError.js, which allowJs lets TypeScript read: a code added on one side only
// fails the check here instead of typing a real error code as impossible.
import { MESSAGES } from '../../web/BgsyncError.js';
import type { BgsyncErrorCode } from 'bgsync';

type JsCode = keyof typeof MESSAGES;
export const typedCodesAreJsCodes: JsCode[] = [] as BgsyncErrorCode[];
export const jsCodesAreTypedCodes: BgsyncErrorCode[] = [] as JsCode[];
