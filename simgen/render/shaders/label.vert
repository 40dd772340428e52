#version 330 core
// simgen label pass: part id, camera-z depth and the surface normal from the same rasterization.
layout(location = 0) in vec3 position;
#ifdef NORMAL_LOC
layout(location = NORMAL_LOC) in vec3 normal;
#endif
layout(location = INST_M_LOC) in mat4 inst_m;

uniform mat4 P;
uniform mat4 V;
uniform mat4 M;

out vec3 view_pos;
#ifdef NORMAL_LOC
out vec3 view_normal;
#endif

void main()
{
    mat4 mv = V * M * inst_m;  // rigid: poses never scale (mesh scale is baked into vertices)
    vec4 p = mv * vec4(position, 1.0);
    view_pos = p.xyz;  // OpenGL camera frame: x right, y up, looking down -z
#ifdef NORMAL_LOC
    view_normal = mat3(mv) * normal;
#endif
    gl_Position = P * p;
}
