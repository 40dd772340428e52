#version 330 core
// Writes (instance id, depth, 0, 1) into a float framebuffer. The id arrives as the
// segmentation color (three bytes / 255) that pyrender sets per node.
uniform vec3 color;
in float view_depth;
out vec4 frag_color;

void main()
{
    vec3 b = floor(color * 255.0 + 0.5);
    float id = b.r + 256.0 * b.g + 65536.0 * b.b;
    frag_color = vec4(id, view_depth, 0.0, 1.0);
}
