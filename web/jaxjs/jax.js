// jax-js as served from web/node_modules (npm ci in web/ installs the version package.json pins).
export * from '../node_modules/@jax-js/jax/dist/index.js';
