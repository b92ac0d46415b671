/** Who made a call, as far as Latch can tell: kept on sessions and in security alerts. */
export interface ClientInfo {
  /** The client's address after trusted-proxy resolution; '' if unknown. */
  ip: string;
  userAgent: string;
}
