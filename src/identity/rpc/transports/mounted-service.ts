import type { DescService } from '@bufbuild/protobuf';

/** What the service listeners (grpc-server.ts, http-server.ts) are given to serve, and their common limit. */

export interface MountedService {
  service: DescService;
  /** A (wrapped, see pipeline/wrap-service.ts) protobuf-es ServiceImpl for `service`. */
  impl: object;
}

/** Our messages are small; a 64 KiB cap keeps a hostile client from making us buffer megabytes. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
