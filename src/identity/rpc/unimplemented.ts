import type { DescMethod } from '@bufbuild/protobuf';
import { LatchError } from '../../shared/errors.js';

/**
 * The one answer for a method Latch declares but does not serve (yet): UNIMPLEMENTED with one id.
 * The pipeline gives it to every method a service implementation leaves out; the grpc-js adapter
 * gives it to a method mounted without an implementation at all.
 */
export const unimplemented = (method: DescMethod): LatchError =>
  new LatchError('unimplemented', 'ERR_UNIMPLEMENTED', `${method.name} is not implemented`);
