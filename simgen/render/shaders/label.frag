#version 330 core
// Writes (part id, depth, 0, 1) into a float framebuffer and, when a second target is bound,
// the unit surface normal in the OpenCV camera frame (x right, y down, z forward), facing the
// camera. The id arrives as the segmentation color (three bytes / 255) pyrender sets per node.
uniform vec3 color;
in vec3 view_pos;
#ifdef NORMAL_LOC
in vec3 view_normal;
#endif
layout(location = 0) out vec4 frag_color;
layout(location = 1) out vec4 frag_normal;

void main()
{
    vec3 b = floor(color * 255.0 + 0.5);
    float id = b.r + 256.0 * b.g + 65536.0 * b.b;
    frag_color = vec4(id, -view_pos.z, 0.0, 1.0);
    // geometric normal of the rasterized triangle; it always faces the camera
    vec3 n = normalize(cross(dFdx(view_pos), dFdy(view_pos)));
#ifdef NORMAL_LOC
    // the mesh's own (interpolated) normal where it has one, turned to the visible side
    vec3 s = normalize(view_normal);
    n = dot(s, n) < 0.0 ? -s : s;
#endif
    frag_normal = vec4(n.x, -n.y, -n.z, 1.0);
}
