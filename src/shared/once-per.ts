/**
 * `derive(key)` worked out once per key object and kept as long as the key lives (a WeakMap).
 * For values built from objects that are themselves reused while nothing changed: the answer for
 * a cached token, the response for a cached answer, the KeyObject for a CryptoKey.
 */
export function oncePer<K extends object, V>(derive: (key: K) => V): (key: K) => V {
  const known = new WeakMap<K, V>();
  return (key) => {
    let value = known.get(key);
    if (value === undefined) {
      value = derive(key);
      known.set(key, value);
    }
    return value;
  };
}
