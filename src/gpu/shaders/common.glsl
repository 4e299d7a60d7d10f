// Shared by every shader: the workgroup size and the flat index of a 2-D dispatch (x up to
// 65535 groups, y counting rows of them), so that long vectors fit any device's limits.
#extension GL_GOOGLE_include_directive : require
#define WG 64
uint flat_group() {
    return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
}
