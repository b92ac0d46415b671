import { create, createFileRegistry, type DescMessage, type DescService } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';

/**
 * The example's own contract, written as a descriptor instead of generated code so the example
 * stays one folder:
 *
 *   package downstream.v1;
 *   service GreeterService {
 *     rpc Hello(HelloRequest) returns (HelloResponse);        // any signed-in user
 *     rpc AdminHello(HelloRequest) returns (HelloResponse);   // role admin
 *     rpc SecureHello(HelloRequest) returns (HelloResponse);  // a session with a second factor
 *   }
 *   message HelloRequest {}
 *   message HelloResponse { string user_id = 1; string email = 2; string role = 3; }
 */
const file = create(FileDescriptorProtoSchema, {
  name: 'downstream/v1/greeter.proto',
  package: 'downstream.v1',
  syntax: 'proto3',
  messageType: [
    { name: 'HelloRequest' },
    {
      name: 'HelloResponse',
      field: ['user_id', 'email', 'role'].map((name, i) => ({ name, jsonName: camel(name), number: i + 1, type: 9 /* string */, label: 1 /* optional */ })),
    },
  ],
  service: [
    {
      name: 'GreeterService',
      method: ['Hello', 'AdminHello', 'SecureHello'].map((name) => ({ name, inputType: '.downstream.v1.HelloRequest', outputType: '.downstream.v1.HelloResponse' })),
    },
  ],
});

const registry = createFileRegistry(file, () => undefined);

export const GreeterService: DescService = registry.getService('downstream.v1.GreeterService')!;
export const HelloRequestSchema: DescMessage = registry.getMessage('downstream.v1.HelloRequest')!;
export const HelloResponseSchema: DescMessage = registry.getMessage('downstream.v1.HelloResponse')!;

export interface HelloResponse {
  userId: string;
  email: string;
  role: string;
}

function camel(s: string): string {
  return s.replace(/_(.)/g, (_, c: string) => c.toUpperCase());
}
