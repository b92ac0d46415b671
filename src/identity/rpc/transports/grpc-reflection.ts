import { createRequire } from 'node:module';
import path from 'node:path';
import { clearField, fromBinary, toBinary, type DescFile, type DescService } from '@bufbuild/protobuf';
import {
  FieldDescriptorProtoSchema,
  FileDescriptorProtoSchema,
  type DescriptorProto,
  type FileDescriptorProto,
} from '@bufbuild/protobuf/wkt';
import { loadSync } from '@grpc/proto-loader';
import type { ReflectionService } from '@grpc/reflection';
import { protoPath as healthProtoPath } from 'grpc-health-check';

type ReflectionPackage = ConstructorParameters<typeof ReflectionService>[0];
type Descriptors = Record<string, { fileDescriptorProtos: Buffer[] }>;

/**
 * What server reflection describes: our services, and, as grpc-go does, every other service the
 * port serves (grpc.health.v1.Health and the reflection services themselves), so that
 * reflection-driven clients (grpcurl, buf curl) can call the health check too.
 */
export function reflectionPackage(services: DescService[]): ReflectionPackage {
  return { ...ownServices(services), ...builtInServices() } as unknown as ReflectionPackage;
}

/**
 * Reflection wants serialized FileDescriptorProtos for every file a service's types live in,
 * dependencies included (google/protobuf/timestamp.proto...). protobuf-es has them embedded in
 * the generated code, so no .proto file of ours is read at run time.
 */
function ownServices(services: DescService[]): Descriptors {
  const files = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (files.has(f.proto.name)) return;
    files.set(f.proto.name, f);
    f.dependencies.forEach(visit);
  };
  services.forEach((s) => visit(s.file));
  const fileDescriptorProtos = [...files.values()].map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
  const pkg: Descriptors = {};
  for (const s of services) pkg[s.typeName] = { fileDescriptorProtos };
  return pkg;
}

/** The health and reflection services, from the .proto files their packages ship and load. */
function builtInServices(): Descriptors {
  const require = createRequire(import.meta.url);
  // build/src/index.js -> build/proto
  const reflectionProtos = path.resolve(path.dirname(require.resolve('@grpc/reflection')), '../proto');
  const healthProtos = path.resolve(path.dirname(healthProtoPath), '../..');
  const loaded = loadSync(
    ['health/v1/health.proto', 'grpc/reflection/v1/reflection.proto', 'grpc/reflection/v1alpha/reflection.proto'],
    { includeDirs: [healthProtos, reflectionProtos], keepCase: true },
  );
  const files = new Map<string, FileDescriptorProto>();
  for (const definition of Object.values(loaded)) {
    // Message and enum definitions carry their file's descriptors; service definitions do not.
    const protos = 'fileDescriptorProtos' in definition ? definition.fileDescriptorProtos : undefined;
    if (!Array.isArray(protos)) continue;
    for (const bytes of protos as Buffer[]) {
      const file = fromBinary(FileDescriptorProtoSchema, bytes);
      if (!files.has(file.name)) files.set(file.name, asProtocWritesIt(file));
    }
  }
  return { 'grpc.builtin': { fileDescriptorProtos: [...files.values()].map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f))) } };
}

/**
 * proto-loader's descriptors (made by protobufjs) differ from protoc's in ways that make Go
 * clients (buf curl, grpcurl) drop the file, and with it the service: a map's entry type is named
 * after the field (`Statuses`, not `StatusesEntry`), scalar fields carry an empty type name, and
 * references to nested types are relative (`ServingStatus`). This rewrites those three.
 */
function asProtocWritesIt(file: FileDescriptorProto): FileDescriptorProto {
  const renamed = new Map<string, string>();
  const defined = new Set<string>();
  const root = file.package === '' ? '' : `.${file.package}`;
  const collect = (scope: string, messages: DescriptorProto[]) => {
    for (const m of messages) {
      const name = `${scope}.${m.name}`;
      for (const nested of m.nestedType) {
        if (nested.options?.mapEntry !== true) continue;
        const field = m.field.find((f) => f.typeName === nested.name || f.typeName === `${name}.${nested.name}`);
        if (field === undefined) continue;
        const entry = `${field.name.replace(/(?:^|_)([a-z])/g, (_, c: string) => c.toUpperCase())}Entry`;
        renamed.set(`${name}.${nested.name}`, `${name}.${entry}`);
        nested.name = entry;
      }
      defined.add(name);
      m.enumType.forEach((e) => defined.add(`${name}.${e.name}`));
      collect(name, m.nestedType);
    }
  };
  file.enumType.forEach((e) => defined.add(`${root}.${e.name}`));
  collect(root, file.messageType);
  const resolve = (scope: string, ref: string): string => {
    if (ref.startsWith('.')) return renamed.get(ref) ?? ref;
    for (let s = scope; ; s = s.slice(0, Math.max(0, s.lastIndexOf('.')))) {
      const full = renamed.get(`${s}.${ref}`) ?? `${s}.${ref}`;
      if (defined.has(full)) return full;
      if (s === '') return ref;
    }
  };
  const qualify = (scope: string, messages: DescriptorProto[]) => {
    for (const m of messages) {
      const name = `${scope}.${m.name}`;
      for (const f of m.field) {
        if (f.typeName === '') clearField(f, FieldDescriptorProtoSchema.field.typeName);
        else f.typeName = resolve(name, f.typeName);
      }
      qualify(name, m.nestedType);
    }
  };
  qualify(root, file.messageType);
  for (const s of file.service) {
    for (const m of s.method) {
      m.inputType = resolve(root, m.inputType);
      m.outputType = resolve(root, m.outputType);
    }
  }
  return file;
}
