#version 330 core
// simgen label pass: instance id and camera-z depth from the same rasterization.
layout(location = 0) in vec3 position;
layout(location = INST_M_LOC) in mat4 inst_m;

uniform mat4 P;
uniform mat4 V;
uniform mat4 M;

out float view_depth;

void main()
{
    vec4 view_pos = V * M * inst_m * vec4(position, 1.0);
    view_depth = -view_pos.z;  // OpenGL cameras look down -z; depth is positive forward
    gl_Position = P * view_pos;
}
