import * as grpc from '@grpc/grpc-js';

/**
 * Floor (b): a bare grpc-js server in its own process that answers
 * identity.v1.TokenIntrospectionService/Introspect with one prebuilt response. The method is
 * registered through a hand-written service definition whose serializers pass bytes through, so
 * no protobuf work happens per call: whatever this process spends is grpc-js and HTTP/2 alone.
 *
 * argv[2]: the IntrospectResponse as hex (encoded once by the bench with toBinary).
 * Prints `{"port":N}` on stdout once listening; stops on SIGTERM.
 */

const response = Buffer.from(process.argv[2] ?? '', 'hex');
const bytes = (b: Buffer) => b;
const definition: grpc.ServiceDefinition = {
  Introspect: {
    path: '/identity.v1.TokenIntrospectionService/Introspect',
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
};

const server = new grpc.Server();
server.addService(definition, {
  Introspect: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, response),
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
process.once('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
