#!/usr/bin/env node
// `npm start`: installs and builds if needed, then brings up the Bookinfo mesh (once `trellis up` lands).
console.log('trellis: the local Bookinfo mesh (`trellis up`) is not yet built; see the open issues (`issues`).');
